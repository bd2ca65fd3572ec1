"""Why the judge times the MLA decode seed far slower than ``do_bench`` does (issue 17): a probe.

On the H100 the engine's flushed figure for the seed on the batch-64 feedback workload was 1.30 ms, while
``triton.testing.do_bench`` gave 0.094 ms for the same seed and workload, and the gap grew with the tokens
gathered; the library, timed in the judge's own process, did not show it. The candidate differs in two ways:
it reads inputs the judge wrote into a CUDA-IPC slab, and each timed call follows the judge's work (its
L2 flush) in another process, i.e. a GPU context switch. This times the same call five ways:

A. this process, its own tensors, do_bench;  B. this process, the slab (cuMemAlloc), do_bench;
C. a child process on the IPC-opened slab, do_bench (the child flushes the L2 itself);
D. the child on the slab, the engine's way: this process flushes the L2 in its own context and synchronizes,
   then the child synchronizes, records the start event, calls, synchronizes, records the end event;
E. as D, but the child also runs its own small kernel before the start event (absorbing a context switch);
F. as D, but the child first reads one byte every 2 MiB of every input (warms its address translation for
   2 MiB pages while bringing almost nothing into the L2);  G. as F, one byte every 64 KiB;
DW, GW. as D and G, with the parent rewriting every input in the slab before its flush, as the engine does;
S, SGW. as D and GW, with a ~100 us spin kernel queued before the start event, so the call's host-side work
   overlaps GPU work instead of starting on an idle GPU (do_bench's regime, where the previous call hides it);
N, SN. empty calls in the D and S orders: the fixed cost each of those includes;
V. as C, on a slab made the way the judge makes them now (cuMemCreate, its file descriptor passed to the
   child, mapped there at 2 MiB granularity) instead of a legacy IPC handle.
Modes D to SGW (and N, SN) run on that VMM slab since the judge moved to it (before: on the legacy IPC slab,
evals/results/ipc_gather_probe_h200.md); S is the judge's own regime for the FIB tasks. The JSON is rewritten
after every mode, so a run cut short keeps what it measured.

Usage (GPU machine): ``python evals/ipc_gather_probe.py OUT_DIR [WORKLOAD_ID|max] [TASK]``; writes
OUT_DIR/ipc_gather_probe_<TASK>.json.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TASK = sys.argv[3] if len(sys.argv) > 3 else "mla_paged_decode_h16_ckv512_kpe64_ps1"
CALLS = 60
MODES = ("N", "D", "E", "F", "G", "DW", "GW", "SN", "S", "SGW")
TOUCH = {"F": 2 << 20, "G": 64 << 10, "GW": 64 << 10, "SGW": 64 << 10}
SPIN_CYCLES = 200_000


def _setup(workload_id: str | None) -> tuple[Any, dict[str, Any], Any]:
    from ksearch_agent.task import load_task
    from ksearch_agent.worker.loader import load_module, with_scalars

    task = load_task(ROOT / "tasks" / TASK)
    bench = task.select(role="benchmark")
    wl = next((w for w in bench if w.id == workload_id), None) or max(bench, key=task.bytes)
    resolved = task.resolve(wl)
    seed = load_module(task.directory / "seeds" / "triton_split_kv.py", "probe_seed")
    return with_scalars(seed.run, task.worker_spec(), resolved["axes"]), resolved, wl


def _bench(fn: Any, args: list[Any]) -> float:
    import triton.testing

    return float(triton.testing.do_bench(lambda: fn(*args), warmup=25, rep=100, return_mode="median"))


def _child(
    handle: dict[str, Any], vmm: dict[str, Any], regions: list[dict[str, Any]], workload_id: str, conn: Any
) -> None:
    from multiprocessing.reduction import recv_handle

    import torch

    from ksearch_agent.worker.slab import Region, Slab

    device = torch.device("cuda", 0)
    fn, _, _ = _setup(workload_id)
    torch.empty(1, device=device)  # a context before the IPC open
    own = Slab.open(vmm, device, recv_handle(conn))
    own_views = [own.view(Region.from_json(r)) for r in regions]
    fn(*own_views)
    torch.cuda.synchronize()
    conn.send({"V": _bench(fn, own_views)})
    slab = Slab.open(handle, device)
    legacy_views = [slab.view(Region.from_json(r)) for r in regions]
    fn(*legacy_views)
    torch.cuda.synchronize()
    conn.send({"C": _bench(fn, legacy_views)})
    slab.close()
    views = own_views  # the modes below run on the VMM slab, as the judge's contestants now do
    scratch = torch.empty(1 << 20, dtype=torch.uint8, device=device)
    flat = [v.view(-1).view(torch.uint8) for v in views if v.numel() > 0]
    for mode in MODES:
        times = []
        for _ in range(CALLS):
            conn.recv()  # the parent has flushed the L2 in its context and synchronized
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            if mode == "E":
                scratch.zero_()
            if mode in TOUCH:
                for f in flat:
                    f[:: TOUCH[mode]].max()
            torch.cuda.synchronize()
            if mode.startswith("S"):
                torch.cuda._sleep(SPIN_CYCLES)
            start.record()
            if not mode.endswith("N"):
                fn(*views)
            torch.cuda.synchronize()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
            conn.send("done")
        conn.send({mode: statistics.median(times)})
    own.close()


def main() -> int:
    import torch

    from ksearch_agent.worker.inputs import make_inputs
    from ksearch_agent.worker.slab import Slab, plan_layout

    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "evals" / "results"
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device("cuda", 0)
    fn, resolved, wl = _setup(sys.argv[2] if len(sys.argv) > 2 and sys.argv[2] != "max" else None)
    inputs = make_inputs(resolved["inputs"], 7, device)
    result: dict[str, Any] = {"gpu": torch.cuda.get_device_name(0), "workload": wl.id, "axes": wl.axes}
    result["A"] = _bench(fn, inputs)
    regions, nbytes = plan_layout(
        [
            {"name": s["name"], "shape": list(t.shape), "dtype": s["dtype"]}
            for s, t in zip(resolved["inputs"], inputs, strict=True)
        ]
    )
    slab = Slab.create(nbytes, device, legacy_ipc=True)
    vmm = Slab.create(nbytes, device)
    for v, t in zip([vmm.view(r) for r in regions], inputs, strict=True):
        v.copy_(t)
    legacy_views = [slab.view(r) for r in regions]
    for v, t in zip(legacy_views, inputs, strict=True):
        v.copy_(t)
    torch.cuda.synchronize()
    result["B"] = _bench(fn, legacy_views)
    views = [vmm.view(r) for r in regions]  # what the modes' rewrites ("W") write into
    flush = torch.empty(2 * 60 * (1 << 20), dtype=torch.uint8, device=device)
    parent, child_end = mp.get_context("spawn").Pipe()
    child = mp.get_context("spawn").Process(
        target=_child, args=(slab.handle(), vmm.handle(), [r.as_json() for r in regions], wl.id, child_end)
    )
    child.start()
    from multiprocessing.reduction import send_handle

    send_handle(parent, vmm.export_fd, child.pid)
    for _ in range(2):
        result.update(parent.recv())
        print(json.dumps(result), flush=True)
    saved = [t.clone() for t in inputs]
    for mode in MODES:
        for _ in range(CALLS):
            if mode.endswith("W"):
                for v, t in zip(views, saved, strict=True):
                    v.copy_(t)
            flush.zero_()
            torch.cuda.synchronize()
            parent.send("go")
            parent.recv()
        result.update(parent.recv())
        (out / f"ipc_gather_probe_{TASK}.json").write_text(json.dumps(result, indent=1))
    child.join(60)
    slab.close()
    print(json.dumps(result, indent=1))
    (out / f"ipc_gather_probe_{TASK}.json").write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
