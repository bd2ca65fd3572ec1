"""Markdown summary of ``search_gpu.json`` (from search_gpu_run.py); every number comes from the JSON.

Usage: ``python evals/report_search.py evals/results/search_gpu.json > evals/results/search_gpu.md``.
"""

from __future__ import annotations

import json
import sys

from ksearch_agent.results import geomean

TARGET_GPUMODE_MS = 0.88  # issue 4: 0.80x the best published kernel on this H100 (GPUMode protocol)
TARGET_FLUSHED_MS = 0.93  # the same target in the flushed protocol


def main(path: str) -> None:
    r = json.load(open(path))
    out = [
        f"# K-Search with the playbook policy on the GPU — {r['date']}",
        "",
        f"Device: {r['gpu']}; torch {r['torch']}, triton {r['triton']}. Command: `{r['command']}` through the "
        "device tool, with the package installed; summary by `python evals/report_search.py`.",
        "",
    ]
    for task in ("trimul", "rmsnorm"):
        t = r[task]
        out += [
            f"## {task}: {t['status']} after {t['seconds']:.0f} s",
            "",
            "| round | action | origin | candidate | status | geomean speedup | best so far |",
            "|---|---|---|---|---|---|---|",
        ]
        for c in t["candidates"]:
            sp = c["geomean_speedup"]
            out.append(
                f"| {c['round']} | {c['action_node']} | {c['origin']} | {c['id']} | {c['status']} | "
                f"{'—' if sp is None else f'{sp:.3f}'} | {c['best_so_far']:.3f} |"
            )
        if task == "trimul" and "export" in r:
            ev = r.get("eval_exported", {})
            doc = ev.get("json") if isinstance(ev.get("json"), dict) else {}
            out += [
                "",
                f"`ksearch export {{run}} trimul_best_submission.py --gpumode`: exit {r['export']['exit']}; "
                f"`ksearch eval trimul trimul_best_submission.py --json`: exit {ev.get('exit')}, status "
                f"{doc.get('status')}, geomean speedup {doc.get('geomean_speedup')}.",
            ]
        conf = t.get("confirmation") or {}
        if conf.get("duels"):
            out += [
                "",
                f"Before the run ended, the contenders {', '.join(conf['contenders'])} (top scores, within 10% of "
                "the best) were re-timed side by side, two at a time (flushed protocol, call by call):",
                "",
                "| challenger | champion | challenger's speed vs champion | winner |",
                "|---|---|---|---|",
            ]
            for d in conf["duels"]:
                ratio = "not timed" if d["ratio"] is None else f"{d['ratio']:.3f}x"
                out.append(f"| {d['challenger']} | {d['champion']} | {ratio} | {d['winner']} |")
            out += ["", f"Named best: {conf['candidate_id']}."]
        out += [
            "",
            "Lineage of the best: " + " → ".join(f"{n['id']} ({n['decision'][:60]})" for n in t["lineage"]),
            "",
            "Final world model:",
            "",
            "```",
            t["outline"],
            "```",
            "",
        ]
    sides = [
        (label, r[key])
        for key, label in (("trimul_best_vs_seed", "seed"), ("trimul_best_vs_previous", "previous"))
        if r.get(key)
    ]
    for label, side in sides:
        title = (
            "the bundled three-kernel seed (triton_simple.py)"
            if label == "seed"
            else f"the previous best ({side.get('previous', '?')})"
        )
        out += [f"## Best TriMul kernel vs {title} and the PyTorch reference, side by side", ""]
        for proto, p in side.items():
            if proto == "previous":
                continue
            out += [
                f"### {proto} protocol",
                "",
                f"| benchmark | best ms | {label} ms | reference ms | speedup vs reference |",
                "|---|---|---|---|---|",
            ]
            for w in p["workloads"]:
                out.append(
                    f"| {w['workload']} | {w['latency_ms']:.4f} | {w.get('baseline_latency_ms') or 0:.4f} | "
                    f"{w['reference_latency_ms']:.4f} | {w['speedup']:.2f} |"
                )
            base = [w.get("baseline_latency_ms") for w in p["workloads"]]
            base_geo = geomean(base) if all(base) else None
            ratio = "" if base_geo is None else f" ({base_geo / p['geomean_latency_ms']:.3f}x the {label})"
            out += [
                "",
                f"geomean: best {p['geomean_latency_ms']:.3f} ms, {label} "
                f"{'—' if base_geo is None else f'{base_geo:.3f}'} ms{ratio}, reference "
                f"{p['geomean_reference_ms']:.3f} ms.",
                "",
            ]
    for proto, target in (("gpumode", TARGET_GPUMODE_MS), ("flushed", TARGET_FLUSHED_MS)):
        gms = [side[proto]["geomean_latency_ms"] for _, side in sides if side.get(proto)]
        if gms:
            worst = max(gms)
            verdict = "met" if worst <= target else f"not met ({worst / target:.3f}x the target time)"
            out += [
                f"Issue target, {proto} protocol (≤ 0.80x the best published kernel, about {target} ms geomean): "
                f"the best kernel measured {', '.join(f'{g:.3f}' for g in gms)} ms in this run's {proto} "
                f"profiles; judged on the slower, {verdict}.",
                "",
            ]
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1])
