# Sourced on the device machine from the repository root (". evals/device/setup.sh"): installs the carried wheels
# to /tmp/site, FlashInfer to /tmp/fi and the project to /tmp/kp once per warm machine, and exports PYTHONPATH and
# FLASHINFER_WORKSPACE_BASE. Run eval scripts from /tmp ("cd /tmp && python $REPO/evals/...") so that the
# repository's own folders do not shadow the installed package; run pytest from $REPO with
# PYTHONPATH=$REPO:/tmp/site:/tmp/fi.
REPO=$(pwd)
export REPO
if [ ! -f /tmp/kp.done ]; then
  t0=$(date +%s)
  pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl 2>&1 | tail -2
  mkdir -p /tmp/fi && tar -xJf .whl-fib/flashinfer-site.tar.xz -C /tmp/fi
  pip install -q --no-index --no-deps --no-build-isolation --no-compile --target /tmp/kp . 2>&1 | tail -2
  touch /tmp/kp.done
  echo "device setup took $(( $(date +%s) - t0 )) s"
fi
export PYTHONPATH=/tmp/kp:/tmp/site:/tmp/fi FLASHINFER_WORKSPACE_BASE=/tmp/fi-ws
