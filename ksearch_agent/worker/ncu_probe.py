"""Run a candidate once per workload inside an Nsight Compute capture window.

``ncu --profile-from-start off ... python -m ksearch_agent.worker.ncu_probe REQUEST.json`` — each
workload's candidate is called once to warm up (JIT, autotune) outside the window, then once inside
``cudaProfilerStart/Stop``, so ncu's counters cover exactly one steady-state call.
"""

from __future__ import annotations

import json
import sys

import torch

from ksearch_agent.worker.inputs import make_inputs
from ksearch_agent.worker.session import load_entry


def main(path: str) -> int:
    req = json.loads(open(path).read())
    task, device = req["task"], torch.device("cuda", 0)
    for wl in req["workloads"]:
        cand = load_entry(req["candidate"]["path"], req["candidate"]["api"], task, "candidate", wl["axes"])
        if cand.failure is not None:
            print(cand.failure.log, file=sys.stderr)
            return 1
        fn = cand.bind(wl["axes"])
        inputs = make_inputs(wl["inputs"], 12345, device)
        with torch.no_grad():
            fn(*[t.clone() for t in inputs])
            torch.cuda.synchronize()
            print(f"KSEARCH_WORKLOAD {wl['id']}", flush=True)
            torch.cuda.profiler.start()
            fn(*inputs)
            torch.cuda.synchronize()
            torch.cuda.profiler.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
