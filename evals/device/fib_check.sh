#!/usr/bin/env bash
# Issue 17's checks on a device machine, most important first, each step under its own timeout and writing to $OUT as it
# goes (so a call cut short keeps what finished): the GPU tests, both decode seeds against FlashInfer, the MLA and
# GQA playbook searches, then the cheat/fault corpus and the knob sweep. Run from the repository root with
# carry [".whl", ".whl-fib"] (see bundle.sh). All steps take up to ~18 min and a call at most 10: run
# STEPS="tests fib search_mla" first and STEPS="search_gqa cheats sweep" next while the machine is warm.
# The device tool returns at most 8 files from $OUT, so the steps write under $RES and every finished step
# refreshes one archive, $OUT/fib_check.tgz (unpack it here with tar -xzf).
set -u
: "${OUT:?OUT must name the folder that comes back}"
RES=${RES:-/tmp/fib_check}
mkdir -p "$RES"
. evals/device/setup.sh
STEPS=${STEPS:-"tests fib search_mla search_gqa cheats sweep"}
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$RES/device.txt"
for step in $STEPS; do
  echo "== $step $(date -u +%T)"
  case $step in
    tests) (cd "$REPO" && PYTHONPATH=$REPO:/tmp/site:/tmp/fi timeout 150 python -m pytest -q -p no:cacheprovider \
             -m gpu tests/test_gpu.py -v --timeout 60 --durations=20 > "$RES/pytest_gpu.txt" 2>&1)
           tail -25 "$RES/pytest_gpu.txt" ;;
    fib) (cd /tmp && timeout 170 python "$REPO/evals/fib_gpu.py" --out "$RES" --name fib_gpu \
           --tasks mla_paged_decode_h16_ckv512_kpe64_ps1,gqa_paged_decode_h32_kv4_d128_ps1 > "$RES/fib.log" 2>&1)
         tail -4 "$RES/fib.log" ;;
    search_mla|search_gqa)
      task=mla_paged_decode_h16_ckv512_kpe64_ps1
      [ "$step" = search_gqa ] && task=gqa_paged_decode_h32_kv4_d128_ps1
      (cd /tmp && timeout 205 python "$REPO/evals/fib_search_gpu.py" "$RES/$step" "$task" --search-seconds 180 \
         > "$RES/$step.log" 2>&1)
      tail -6 "$RES/$step.log" ;;
    cheats) (cd /tmp && timeout 170 python "$REPO/evals/cheats_gpu_check.py" "$RES/cheats" "$REPO" > "$RES/cheats.log" 2>&1)
            tail -6 "$RES/cheats.log" ;;
    sweep) (cd /tmp && timeout 150 python "$REPO/evals/fib_knob_sweep.py" "$RES/sweep" > "$RES/sweep.log" 2>&1)
           tail -4 "$RES/sweep.log" ;;
    *) echo "unknown step '$step' (steps: tests fib search_mla search_gqa cheats sweep)"; exit 2 ;;
  esac
  tar -czf "$OUT/fib_check.tgz.part" -C "$RES" . && mv "$OUT/fib_check.tgz.part" "$OUT/fib_check.tgz"
done
