"""Markdown summary of ``search_gpu.json`` (from search_gpu_run.py); every number comes from the JSON.

Usage: ``python evals/report_search.py evals/results/search_gpu.json > evals/results/search_gpu.md``.
"""

from __future__ import annotations

import json
import math
import sys

TARGET_GPUMODE_MS = 0.88  # issue 4: 0.80x the best published kernel on this H100 (GPUMode protocol)


def main(path: str) -> None:
    r = json.load(open(path))
    out = [f"# K-Search with the playbook policy on the GPU — {r['date']}", "",
           f"Device: {r['gpu']}; torch {r['torch']}, triton {r['triton']}. Command: `{r['command']}` through the "
           "device tool, with the package installed; summary by `python evals/report_search.py`.", ""]
    for task in ("trimul", "rmsnorm"):
        t = r[task]
        out += [f"## {task}: {t['status']} after {t['seconds']:.0f} s", "",
                "| round | action | origin | candidate | status | geomean speedup | best so far |", "|---|---|---|---|---|---|---|"]
        for c in t["candidates"]:
            sp = c["geomean_speedup"]
            out.append(f"| {c['round']} | {c['action_node']} | {c['origin']} | {c['id']} | {c['status']} | "
                       f"{'—' if sp is None else f'{sp:.3f}'} | {c['best_so_far']:.3f} |")
        if task == "trimul" and "export" in r:
            ev = r.get("eval_exported", {})
            doc = ev.get("json") if isinstance(ev.get("json"), dict) else {}
            out += ["", f"`ksearch export {{run}} trimul_best_submission.py --gpumode`: exit {r['export']['exit']}; "
                        f"`ksearch eval trimul trimul_best_submission.py --json`: exit {ev.get('exit')}, status "
                        f"{doc.get('status')}, geomean speedup {doc.get('geomean_speedup')}."]
        out += ["", "Lineage of the best: " + " → ".join(f"{n['id']} ({n['decision'][:60]})" for n in t["lineage"]), "",
                "Final world model:", "", "```", t["outline"], "```", ""]
    side = r.get("trimul_best_vs_seed")
    if side:
        out += ["## Best TriMul kernel vs the bundled seed and the PyTorch reference, side by side", ""]
        for proto, p in side.items():
            out += [f"### {proto} protocol", "", "| benchmark | best ms | seed ms | reference ms | speedup vs reference |",
                    "|---|---|---|---|---|"]
            for w in p["workloads"]:
                out.append(f"| {w['workload']} | {w['latency_ms']:.4f} | {w.get('baseline_latency_ms') or 0:.4f} | "
                           f"{w['reference_latency_ms']:.4f} | {w['speedup']:.2f} |")
            seeds = [w.get("baseline_latency_ms") for w in p["workloads"]]
            seed_geo = math.exp(sum(math.log(v) for v in seeds) / len(seeds)) if all(seeds) else None
            out += ["", f"geomean: best {p['geomean_latency_ms']:.3f} ms, seed "
                        f"{'—' if seed_geo is None else f'{seed_geo:.3f}'} ms, reference {p['geomean_reference_ms']:.3f} ms.", ""]
        gm = side.get("gpumode", {}).get("geomean_latency_ms")
        if gm:
            verdict = "met" if gm <= TARGET_GPUMODE_MS else f"not met ({gm / TARGET_GPUMODE_MS:.2f}x the target time)"
            out += [f"Issue target (≤ 0.80x the best published kernel, about {TARGET_GPUMODE_MS} ms geomean in the GPUMode "
                    f"protocol): best {gm:.3f} ms, {verdict}. The \"seed\" column is the bundled three-kernel seed "
                    "(triton_simple.py).", ""]
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1])
