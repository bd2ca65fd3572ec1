"""Why the judge's candidate figures on the FIB decode tasks spread more than the library's (issue 17): a GPU probe.

Through the judge, the MLA balanced variant scored 85–89 in one run and 63.5 inside a search, with interquartile
ranges up to 0.07 ms on 0.03–0.06 ms medians, while the library's stayed within 0.002–0.014 ms. The candidate runs
in the contestant's process after an IPC round trip (the GPU idles ~0.5–1 ms after the judge's L2 flush); the
library runs in the judge's process right after that flush. Two mechanisms could tie the candidate's figure to
host time, and this probe separates them in one process, with the judge's own ``Timer`` (flush buffer, spin
length) and each side timed round-robin so drift hits every condition alike:

* ``gap``: a host busy-wait of ``--gap-us`` between the flush's synchronize and the spin kernel, as the IPC round
  trip leaves it. If the GPU's clocks drop while it idles, the timed kernel runs slower after a gap.
* ``end first``: the end event recorded right after the call, then the synchronize (the judge records it after
  a device-wide synchronize, so its host's wake-up latency enters every figure).

* ``gated``: the spin replaced by the judge's launch gate (:mod:`ksearch_agent.worker.gate`, capped at 20 ms
  here), which fills every SM and holds until the host releases it after the call has returned, so the
  timed region starts once every launch is queued and the host's launch time cannot reach the figure.

Conditions: judge order, judge order + gap, end first, end first + gap, gated; sides: the seed variant, the library
(plan() outside the timer) and an empty call (the fixed cost). Not the judge's score; a diagnosis aid.

Usage (GPU machine, flashinfer importable): ``python evals/timing_spread_probe.py OUT_DIR [--calls N]
[--gap-us US] [--lead-us US]``; writes OUT_DIR/timing_spread_probe.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "evals"))

from device_info import gpu_and_date  # noqa: E402
from fib_knob_sweep import variant_module  # noqa: E402

from ksearch_agent.opponents import load_opponent, opponent_for  # noqa: E402
from ksearch_agent.task import load_task  # noqa: E402
from ksearch_agent.worker.gate import Gate  # noqa: E402
from ksearch_agent.worker.inputs import make_inputs  # noqa: E402
from ksearch_agent.worker.loader import with_scalars  # noqa: E402
from ksearch_agent.worker.timing import Timer, _quantile  # noqa: E402

# The variants the judge scored best on the H100 (evals/results/fib_gpu_overlap_h100.md).
VARIANTS: dict[str, dict[str, Any]] = {
    "mla_paged_decode_h16_ckv512_kpe64_ps1": {"BALANCED": True, "WAVES": 2, "MIN_SPLIT_BLOCKS": 1},
    "gqa_paged_decode_h32_kv4_d128_ps1": {
        "BALANCED": True,
        "WAVES": 7,
        "MIN_SPLIT_BLOCKS": 1,
        "PV_BF16X2": True,
    },
}
CONDITIONS = [("judge", False), ("judge", True), ("end first", False), ("end first", True), ("gated", False)]

GATE_MAX_US = 20_000.0


def busy_wait_us(us: float) -> None:
    end = time.perf_counter() + us * 1e-6
    while time.perf_counter() < end:
        pass


def timed_ms(
    timer: Timer, fn: Callable[[], Any], order: str, gap_us: float, gate: Gate
) -> tuple[float, float]:
    """One flushed call in the given order, ``gap_us`` of host busy-wait between the flush and the spin: its
    time and the spin's own GPU time (longer than the lead asked for when the clocks are down; for ``gated``,
    the gate's)."""
    import torch

    timer.flush()
    spun, start, end = (torch.cuda.Event(enable_timing=True) for _ in range(3))
    torch.cuda.synchronize()
    if gap_us:
        busy_wait_us(gap_us)
    spun.record()
    if order == "gated":
        gate.close(GATE_MAX_US)
    elif lead := timer.lead_cycles():
        torch.cuda._sleep(lead)
    start.record()
    out = fn()
    if order == "gated":
        gate.open()
    if order in ("judge", "gated"):
        torch.cuda.synchronize()
        end.record()
    else:
        end.record()
        torch.cuda.synchronize()
    end.synchronize()
    del out
    return float(start.elapsed_time(end)), float(spun.elapsed_time(start))


def probe_workload(
    timer: Timer, sides: dict[str, Callable[[], Any]], calls: int, gap_us: float, gate: Gate
) -> dict[str, dict[str, dict[str, float]]]:
    samples: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for _ in range(10):  # warm-up: compiled, planned, clocks up
        for fn in sides.values():
            fn()
    for _ in range(calls):
        for order, gap in CONDITIONS:
            label = f"{order}{' + gap' if gap else ''}"
            for side, fn in sides.items():
                samples.setdefault((side, label), []).append(
                    timed_ms(timer, fn, order, gap_us if gap else 0.0, gate)
                )
    out: dict[str, dict[str, dict[str, float]]] = {}
    for (side, label), pairs in samples.items():
        vals = [ms for ms, _ in pairs]
        out.setdefault(side, {})[label] = {
            "median_ms": statistics.median(vals),
            "iqr_ms": _quantile(vals, 0.75) - _quantile(vals, 0.25),
            "p90_ms": _quantile(vals, 0.9),
            "spin_median_ms": statistics.median(spin for _, spin in pairs),
        }
    return out


def probe_task(name: str, calls: int, gap_us: float, lead_us: float) -> dict[str, Any]:
    import torch

    device = torch.device("cuda", 0)
    timer = Timer(device)
    timer.lead_us = lead_us
    gate = Gate(device)
    task = load_task(ROOT / "tasks" / name)
    spec = task.worker_spec()
    opponent = load_opponent(opponent_for(name) or "", device)
    source = (task.directory / "seeds" / "triton_split_kv.py").read_text()
    module = variant_module(source, VARIANTS[name], f"spread_{name[:3]}")
    rows = []
    for wl in task.select(role="benchmark"):
        resolved = task.resolve(wl)
        inputs = make_inputs(resolved["inputs"], 11, device)
        named = {**dict(zip(spec["input_names"], inputs, strict=True)), **resolved["scalars"]}
        fn = with_scalars(module.run, spec, resolved["axes"])
        sides = {
            "candidate": lambda f=fn, x=inputs: f(*x),
            "library": opponent.plan(named),
            "empty": lambda: None,
        }
        rows.append(
            {"workload": wl.id, "axes": wl.axes, "sides": probe_workload(timer, sides, calls, gap_us, gate)}
        )
        del inputs, named, sides
        torch.cuda.empty_cache()
    return {"task": name, "variant": VARIANTS[name], "workloads": rows}


def markdown(doc: dict[str, Any]) -> str:
    labels = [f"{o}{' + gap' if g else ''}" for o, g in CONDITIONS]
    lines = [
        "# Candidate against library timing spread: idle gap and end-event order (probe, one process)",
        "",
        f"{doc['gpu']} · {doc['date']} · torch {doc['torch']} · triton {doc['triton']} · flashinfer "
        f"{doc['flashinfer']}. Command: `{doc['command']}`. Flushed, lead {doc['lead_us']:.0f} µs, gap "
        f"{doc['gap_us']:.0f} µs, {doc['calls']} calls per cell, round-robin. Cells: median / IQR / the spin's median ms "
        "(the lead asked for; longer when the GPU's clocks are down). "
        "Score = 100 × mean over workloads of library / candidate medians, per condition.",
    ]
    for t in doc["tasks"]:
        lines += ["", f"## {t['task']} {json.dumps(t['variant'])}", ""]
        lines.append("| workload | side | " + " | ".join(labels) + " |")
        lines.append("|---|---|" + "---|" * len(labels))
        for r in t["workloads"]:
            for side, cells in r["sides"].items():
                row = " | ".join(
                    f"{cells[k]['median_ms']:.4f} / {cells[k]['iqr_ms']:.4f} / {cells[k]['spin_median_ms']:.3f}"
                    for k in labels
                )
                lines.append(f"| {r['workload'][:8]} | {side} | {row} |")
        scores = []
        for k in labels:
            ratios = [
                r["sides"]["library"][k]["median_ms"] / r["sides"]["candidate"][k]["median_ms"]
                for r in t["workloads"]
            ]
            scores.append(f"{100 * statistics.fmean(ratios):.1f}")
        lines.append("| score | | " + " | ".join(scores) + " |")
    return "\n".join(lines) + "\n"


def main() -> int:
    from importlib import metadata

    import torch
    import triton

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--gap-us", type=float, default=800.0)
    parser.add_argument("--lead-us", type=float, default=200.0)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("timing_spread_probe: needs an NVIDIA GPU", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = {
        **gpu_and_date(),
        "torch": torch.__version__,
        "triton": triton.__version__,
        "flashinfer": metadata.version("flashinfer-python"),
        "command": f"python evals/timing_spread_probe.py OUT --calls {args.calls} --gap-us {args.gap_us:g} "
        f"--lead-us {args.lead_us:g}",
        "calls": args.calls,
        "gap_us": args.gap_us,
        "lead_us": args.lead_us,
        "tasks": [],
    }
    for name in VARIANTS:
        try:
            doc["tasks"].append(probe_task(name, args.calls, args.gap_us, args.lead_us))
        except Exception as exc:  # noqa: BLE001 - one task's failure must not lose the other's table
            print(f"{name}: {type(exc).__name__}: {exc}", flush=True)
        (args.out / "timing_spread_probe.json").write_text(json.dumps(doc, indent=1))
        (args.out / "timing_spread_probe.md").write_text(markdown(doc))
    print(markdown(doc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
