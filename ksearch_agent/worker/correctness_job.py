"""run_correctness inside the worker: every workload, several trials, fresh unpredictable seeds.

Per trial: inputs from a seed derived from the caller's secret; the reference runs on a snapshot
of the inputs; free device memory is poisoned; the candidate runs on the originals; outputs are
checked for type, shape, dtype and values; the inputs must be bit-identical to the snapshot after
the call.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from ksearch_agent.worker.compare import check_output
from ksearch_agent.worker.inputs import derive_seed, make_inputs
from ksearch_agent.worker.session import (
    as_tuple,
    context_is_healthy,
    failure_from,
    load_entry,
    poison_free_memory,
    synchronize,
)

_RANK = {"PASSED": 0, "INCORRECT_NUMERICAL": 1, "INCORRECT_DTYPE": 2, "INCORRECT_SHAPE": 3, "RUNTIME_ERROR": 4,
         "COMPILE_ERROR": 5, "TIMEOUT": 6, "REJECTED": 7}


def _trial(worker: Any, cand: Any, ref: Any, task: dict[str, Any], wl: dict[str, Any], seed: int) -> dict[str, Any]:
    device: torch.device = worker.device
    inputs = make_inputs(wl["inputs"], seed, device)
    snapshot = [t.clone() for t in inputs]
    with torch.no_grad():
        expected = [t.detach() for t in as_tuple(ref(*snapshot))]
    synchronize(device)
    out_bytes = sum(t.numel() * t.element_size() for t in expected)
    poison_free_memory(device, 2 * out_bytes + (64 << 20))
    t0 = time.perf_counter()
    before = worker.watch.snapshot()
    try:
        with torch.no_grad():
            got = as_tuple(cand(*inputs))
        synchronize(device)
    except BaseException as exc:  # noqa: BLE001 - candidate code may raise anything
        if isinstance(exc, KeyboardInterrupt):
            raise
        worker.watch.check(before)  # a forked child stops here
        fail = failure_from(exc, "running the candidate")
        if device.type == "cuda" and not context_is_healthy(device):
            fail.fatal = True
        return {"status": fail.status, "log": fail.log, "fatal": fail.fatal}
    seconds = time.perf_counter() - t0
    if (problem := worker.watch.check(before)) is not None:
        return {"status": "REJECTED", "log": f"the candidate {problem}"}
    names = task["output_names"]
    if len(got) != len(expected):
        return {"status": "INCORRECT_SHAPE", "seconds": seconds,
                "log": f"returned {len(got)} outputs, expected {len(expected)} ({', '.join(names)})"}
    result: dict[str, Any] = {"status": "PASSED", "seconds": seconds, "max_abs_error": 0.0, "max_rel_error": 0.0}
    for name, o, r in zip(names, got, expected, strict=True):
        res = check_output(name, o, r, task["tolerance"])
        for key in ("max_abs_error", "max_rel_error"):
            if key in res:
                result[key] = max(result[key], res[key])
        if "worst_index" in res and res["status"] != "PASSED":
            result["worst_index"] = res["worst_index"]
        if _RANK[res["status"]] > _RANK[result["status"]]:
            result["status"], result["log"] = res["status"], res.get("log", "")
    changed = [n for n, a, b in zip(task["input_names"], inputs, snapshot, strict=True) if not torch.equal(a, b)]
    if changed:
        result["status"] = "REJECTED"
        result["log"] = f"the candidate modified its input(s) {changed}; inputs must stay unchanged"
    return result


def check_workload(worker: Any, cand: Any, ref: Any, task: dict[str, Any], wl: dict[str, Any],
                   trials: int, secret: int) -> dict[str, Any]:
    merged: dict[str, Any] = {"workload": wl["id"], "status": "PASSED", "trials": 0, "max_abs_error": 0.0,
                              "max_rel_error": 0.0}
    # Fresh seeds per trial, then trial 0's inputs once more: a result that changes on a re-run of the
    # same inputs (state carried between calls) fails like any wrong result.
    seeds = [derive_seed(secret, wl["id"], t) for t in range(trials)]
    if trials >= 2:
        seeds.append(seeds[0])
    for trial, seed in enumerate(seeds):
        res = _trial(worker, cand, ref, task, wl, seed)
        merged["trials"] = trial + 1
        for key in ("max_abs_error", "max_rel_error"):
            merged[key] = max(merged[key], res.get(key, 0.0))
        if "seconds" in res:
            merged["candidate_seconds"] = max(merged.get("candidate_seconds", 0.0), res["seconds"])
        if res["status"] != "PASSED":
            which = "re-run of trial 1" if trial == trials else f"trial {trial + 1}/{trials}"
            merged.update(status=res["status"], log=f"{which}: {res.get('log', '')}",
                          worst_index=res.get("worst_index"))
            if res.get("fatal"):
                merged["fatal"] = True
            break
    return merged


def run_correctness(worker: Any, req: dict[str, Any]) -> None:
    task, workloads = req["task"], req["workloads"]
    if not workloads:
        worker.emit({"type": "done"})
        return
    first_axes = workloads[0]["axes"]
    ref = load_entry(task["reference"], "run", task, "reference", first_axes)
    if ref.failure is not None:
        worker.emit({"type": "done", "error": f"the task's reference failed to load: {ref.failure.log}"})
        return
    cand = load_entry(req["candidate"]["path"], req["candidate"]["api"], task, "candidate", first_axes)
    for wl in workloads:
        if cand.failure is not None:
            worker.emit({"type": "workload", "result": cand.failure.as_result(wl["id"])})
            continue
        res = check_workload(worker, cand.bind(wl["axes"]), ref.bind(wl["axes"]), task, wl,
                             int(req.get("trials", 2)), int(req["secret"]))
        worker.emit({"type": "workload", "result": res})
        if res.get("fatal"):
            worker.fatal = True
            worker.emit({"type": "done", "fatal": True})
            return
    worker.emit({"type": "done"})


def run_check_reference(worker: Any, req: dict[str, Any]) -> None:
    """Run a (possibly LLM-written) reference on small random inputs and check its outputs against the
    definition's shapes and dtypes; used to validate new task definitions before any search."""
    from ksearch_agent.worker.inputs import DTYPES

    task, problems = req["task"], []
    for wl in req["workloads"]:
        ref = load_entry(task["reference"], "run", task, "reference", wl["axes"])
        if ref.failure is not None:
            problems.append(f"the reference does not load: {ref.failure.log[-1500:]}")
            break
        try:
            inputs = make_inputs(wl["inputs"], derive_seed(int(req["secret"]), wl["id"], "ref"), worker.device)
            with torch.no_grad():
                outs = as_tuple(ref.bind(wl["axes"])(*inputs))
        except Exception as exc:  # noqa: BLE001 - LLM-written code may raise anything
            problems.append(f"workload {wl['id']}: the reference raised {type(exc).__name__}: {exc}"[:1500])
            continue
        if len(outs) != len(wl["outputs"]):
            problems.append(f"workload {wl['id']}: the reference returned {len(outs)} outputs, the definition "
                            f"declares {len(wl['outputs'])}")
            continue
        for spec, out in zip(wl["outputs"], outs, strict=True):
            if not isinstance(out, torch.Tensor):
                problems.append(f"workload {wl['id']}: output {spec['name']!r} is not a tensor")
            elif list(out.shape) != spec["shape"] or out.dtype != DTYPES[spec["dtype"]]:
                problems.append(f"workload {wl['id']}: output {spec['name']!r} is {list(out.shape)} "
                                f"{str(out.dtype)[6:]}, the definition says {spec['shape']} {spec['dtype']}")
            elif not bool(torch.isfinite(out.float()).all()):
                problems.append(f"workload {wl['id']}: output {spec['name']!r} has NaN or inf values")
    worker.emit({"type": "done", "problems": problems})
