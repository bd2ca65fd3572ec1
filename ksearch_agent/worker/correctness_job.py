"""run_correctness in the judge: every workload, several trials, fresh unpredictable seeds.

The judge never imports candidate code. Per trial it makes the inputs from a seed derived from the
request's secret, runs the reference on its own copies and checks the reference's outputs against the
definition, writes the inputs into the slab it lends the contestant, poisons the slab's output regions,
and asks the contestant (a fresh process for this candidate) for one call. It then copies the outputs
the contestant wrote into its own memory, checks type, shape, dtype and values, and checks that the
inputs in the slab are bit-identical to its private copy. A contestant that crashes, hangs, exits or
answers garbage produces a status, never a record of its own.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch

from ksearch_agent.worker.compare import check_output
from ksearch_agent.worker.contestants import Contestant, ContestantError, kill_strays, lend_slab
from ksearch_agent.worker.inputs import DTYPES, derive_seed, make_inputs
from ksearch_agent.worker.process import WorkerDied, WorkerError, WorkerTimeout
from ksearch_agent.worker.session import (
    as_tuple,
    device_memory_note,
    is_out_of_memory,
    load_entry,
    release_cached_memory,
    synchronize,
)
from ksearch_agent.worker.slab import Region, Slab, plan_layout

_RANK = {
    "PASSED": 0,
    "INCORRECT_NUMERICAL": 1,
    "INCORRECT_DTYPE": 2,
    "INCORRECT_SHAPE": 3,
    "RUNTIME_ERROR": 4,
    "COMPILE_ERROR": 5,
    "TIMEOUT": 6,
    "REJECTED": 7,
}
CANDIDATE_ERRORS = ("RUNTIME_ERROR", "COMPILE_ERROR")


class ReferenceProblem(Exception):
    """The task's reference disagrees with its own definition: no candidate can be blamed."""


class ContestantGone(Exception):
    """The contestant died, hung, broke protocol or starved the judge of device memory: this workload gets
    ``status``, the rest are not run."""

    def __init__(self, status: str, log: str) -> None:
        super().__init__(log)
        self.status, self.log = status, log


@dataclass
class Layout:
    """Where one workload's inputs and outputs live in the slab."""

    inputs: list[Region]
    outputs: list[Region]
    nbytes: int
    out_start: int = 0
    out_end: int = 0
    json: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, wl: dict[str, Any]) -> Layout:
        regions, total = plan_layout(wl["inputs"] + wl["outputs"])
        n = len(wl["inputs"])
        ins, outs = regions[:n], regions[n:]
        start = outs[0].offset if outs else total
        end = max((r.offset + r.nbytes for r in outs), default=total)
        return cls(
            ins,
            outs,
            total,
            start,
            end,
            {"inputs": [r.as_json() for r in ins], "outputs": [r.as_json() for r in outs]},
        )


def slab_bytes(workloads: list[dict[str, Any]]) -> int:
    return max((Layout.of(wl).nbytes for wl in workloads), default=256)


def check_reference_outputs(expected: tuple[Any, ...], wl: dict[str, Any]) -> None:
    specs = wl["outputs"]
    if len(expected) != len(specs):
        raise ReferenceProblem(
            f"workload {wl['id']}: the reference returned {len(expected)} outputs, its "
            f"definition declares {len(specs)}"
        )
    for spec, out in zip(specs, expected, strict=True):
        if not isinstance(out, torch.Tensor):
            raise ReferenceProblem(
                f"workload {wl['id']}: reference output {spec['name']!r} is a "
                f"{type(out).__name__}, not a tensor"
            )
        if list(out.shape) != list(spec["shape"]) or out.dtype != DTYPES[spec["dtype"]]:
            raise ReferenceProblem(
                f"workload {wl['id']}: reference output {spec['name']!r} is {list(out.shape)} "
                f"{str(out.dtype).removeprefix('torch.')}, its definition says {spec['shape']} "
                f"{spec['dtype']}"
            )


def gone(exc: WorkerError, what: str, timeout: float) -> ContestantGone:
    if isinstance(exc, WorkerTimeout):
        return ContestantGone(
            "TIMEOUT",
            f"no result within {timeout:.0f}s; the contestant was killed. "
            f"Last output:\n{exc.log_tail[-1500:]}",
        )
    if isinstance(exc, ContestantError):
        return ContestantGone("RUNTIME_ERROR", f"[incomplete] {exc}")
    kind = "crashed" if isinstance(exc, WorkerDied) else "failed"
    return ContestantGone(
        "RUNTIME_ERROR", f"the contestant {kind} while {what} ({exc}). Last output:\n{exc.log_tail[-1500:]}"
    )


def judge_outputs(
    meta: Any, views: list[torch.Tensor], expected: tuple[torch.Tensor, ...], task: dict[str, Any]
) -> dict[str, Any]:
    """Status of the outputs the contestant reports and wrote, compared in the judge's own memory."""
    names = task["output_names"]
    if not isinstance(meta, list) or not all(isinstance(m, dict) for m in meta):
        return {"status": "RUNTIME_ERROR", "log": "[incomplete] the contestant sent no output description"}
    if len(meta) != len(expected):
        return {
            "status": "INCORRECT_SHAPE",
            "log": f"returned {len(meta)} outputs, expected {len(expected)} ({', '.join(names)})",
        }
    result: dict[str, Any] = {"status": "PASSED", "max_abs_error": 0.0, "max_rel_error": 0.0}
    for name, m, view, ref in zip(names, meta, views, expected, strict=True):
        if m.get("type") != "torch.Tensor":
            res = {
                "status": "REJECTED",
                "log": f"[output-type] output {name!r} is a {str(m.get('type'))[:80]}, "
                "not a plain torch.Tensor",
            }
        elif m.get("device") != ref.device.type:
            res = {
                "status": "RUNTIME_ERROR",
                "log": f"output {name!r} is on {m.get('device')}, expected {ref.device.type}",
            }
        elif list(m.get("shape") or []) != list(ref.shape):
            res = {
                "status": "INCORRECT_SHAPE",
                "log": f"output {name!r} has shape {m.get('shape')}, expected {list(ref.shape)}",
            }
        elif m.get("dtype") != str(ref.dtype).removeprefix("torch."):
            res = {
                "status": "INCORRECT_DTYPE",
                "log": f"output {name!r} has dtype {m.get('dtype')}, "
                f"expected {str(ref.dtype).removeprefix('torch.')}",
            }
        elif not m.get("copied"):
            res = {"status": "RUNTIME_ERROR", "log": f"[incomplete] output {name!r} was not handed back"}
        else:
            res = check_output(name, view.clone(), ref, task["tolerance"])
        for key in ("max_abs_error", "max_rel_error"):
            if key in res:
                result[key] = max(result[key], res[key])
        if "worst_index" in res and res["status"] != "PASSED":
            result["worst_index"] = res["worst_index"]
        if _RANK[res["status"]] > _RANK[result["status"]]:
            result["status"], result["log"] = res["status"], res.get("log", "")
    return result


class Trial:
    """Makes one trial's inputs and expected outputs in the judge, and lends the inputs to the slab."""

    def __init__(
        self, judge: Any, ref: Any, wl: dict[str, Any], layout: Layout, slab: Slab, seed: int
    ) -> None:
        self.device: torch.device = judge.device
        try:
            self.inputs = make_inputs(wl["inputs"], seed, self.device)
            with torch.no_grad():
                self.expected = tuple(t.detach() for t in as_tuple(ref(*[t.clone() for t in self.inputs])))
            check_reference_outputs(self.expected, wl)
            release_cached_memory(self.device)  # the reference's peak, before the contestant runs
            self.in_views = [slab.view(r) for r in layout.inputs]
            self.out_views = [slab.view(r) for r in layout.outputs]
            for view, t in zip(self.in_views, self.inputs, strict=True):
                view.copy_(t)
            # NaN: an output never written cannot pass
            slab.raw[layout.out_start : layout.out_end].fill_(0xFF)
            synchronize(self.device)
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            # The contestant shares the card: one that keeps device memory between calls can starve the judge.
            # Failing closed is the only safe verdict (nothing was checked); the numbers say who held what.
            raise ContestantGone(
                "RUNTIME_ERROR",
                f"out of GPU memory while the judge made workload {wl['id']}'s inputs and expected outputs "
                f"({device_memory_note(self.device)}); a candidate must not keep device memory the reference "
                f"needs between calls",
            ) from None

    def modified_inputs(self, names: list[str]) -> list[str]:
        synchronize(self.device)
        return [n for n, a, b in zip(names, self.in_views, self.inputs, strict=True) if not torch.equal(a, b)]


def _call(
    contestant: Contestant,
    trial: Trial,
    wl: dict[str, Any],
    layout: Layout,
    slab: Slab,
    task: dict[str, Any],
    shuffle_seed: int | None,
    deadline: float,
) -> dict[str, Any]:
    out_bytes = sum(t.numel() * t.element_size() for t in trial.expected)
    timeout = max(deadline - time.monotonic(), 1.0)
    try:
        reply = contestant.ask(
            {
                "op": "call",
                "slab": slab.handle(),
                **layout.json,
                "axes": wl["axes"],
                "shuffle_seed": shuffle_seed,
                "poison_bytes": 2 * out_bytes + (64 << 20),
            },
            "called",
            timeout,
        )
    except WorkerError as exc:
        raise gone(exc, "running the candidate", timeout) from None
    err = reply.get("error")
    if err is not None:
        status = err.get("status") if isinstance(err, dict) else None
        log = str(err.get("log", "")) if isinstance(err, dict) else str(err)
        if status not in CANDIDATE_ERRORS:
            status = "RUNTIME_ERROR"
        fatal = bool(err.get("fatal")) if isinstance(err, dict) else False
        if fatal:
            raise ContestantGone(status, log[-3000:])
        return {"status": status, "log": log[-3000:]}
    problems = reply.get("problems") or []
    if problems:
        return {"status": "REJECTED", "log": "the candidate: " + "; ".join(str(p) for p in problems)[:3000]}
    result = judge_outputs(reply.get("outputs"), trial.out_views, trial.expected, task)
    seconds = reply.get("seconds")
    if isinstance(seconds, int | float):
        result["seconds"] = float(seconds)
    changed = trial.modified_inputs(task["input_names"])
    if changed:
        result["status"] = "REJECTED"
        result["log"] = (
            f"[inputs-modified] the candidate modified its input(s) {changed}; inputs must stay unchanged"
        )
    return result


def check_workload(
    judge: Any,
    contestant: Contestant,
    ref: Any,
    task: dict[str, Any],
    wl: dict[str, Any],
    slab: Slab,
    trials: int,
    secret: int,
    timeout: float,
) -> dict[str, Any]:
    merged: dict[str, Any] = {
        "workload": wl["id"],
        "status": "PASSED",
        "trials": 0,
        "max_abs_error": 0.0,
        "max_rel_error": 0.0,
    }
    layout = Layout.of(wl)
    # Fresh seeds per trial, then trial 0's inputs once more: a result that changes on a re-run of the
    # same inputs (state carried between calls) fails like any wrong result. On the CPU one trial runs
    # the interpreter's programs in a shuffled order, as a GPU might.
    seeds = [derive_seed(secret, wl["id"], t) for t in range(trials)]
    if trials >= 2:
        seeds.append(seeds[0])
    shuffled = min(1, trials - 1) if judge.device.type == "cpu" else -1
    deadline = time.monotonic() + timeout
    for trial_no, seed in enumerate(seeds):
        trial = Trial(judge, ref.bind(wl["axes"]), wl, layout, slab, seed)
        shuffle_seed = derive_seed(secret, wl["id"], "shuffle") if trial_no == shuffled else None
        res = _call(contestant, trial, wl, layout, slab, task, shuffle_seed, deadline)
        merged["trials"] = trial_no + 1
        for key in ("max_abs_error", "max_rel_error"):
            merged[key] = max(merged[key], res.get(key, 0.0))
        if "seconds" in res:
            merged["candidate_seconds"] = max(merged.get("candidate_seconds", 0.0), res["seconds"])
        if res["status"] != "PASSED":
            which = "re-run of trial 1" if trial_no == trials else f"trial {trial_no + 1}/{trials}"
            if trial_no == shuffled:
                which += " (programs in shuffled order)"
            merged.update(
                status=res["status"], log=f"{which}: {res.get('log', '')}", worst_index=res.get("worst_index")
            )
            break
    return merged


def load_contestant(
    judge: Any,
    req: dict[str, Any],
    candidate: dict[str, Any],
    timeout: float,
    axes: dict[str, int],
    contestant: Contestant | None = None,
) -> tuple[Contestant | None, dict[str, Any] | None]:
    """A fresh contestant (or ``contestant``, which has run no candidate code) with the candidate imported,
    or the failure every workload gets (the contestant is then finished)."""
    if contestant is None:
        try:
            contestant = judge.pool.take()
        except WorkerError as exc:
            return None, {
                "status": "RUNTIME_ERROR",
                "log": f"the contestant process failed to start: {exc}\n{exc.log_tail[-1500:]}",
            }
    try:
        reply = contestant.ask(
            {
                "op": "load",
                "candidate": candidate,
                "task": req["task"],
                "language": candidate.get("language", "python"),
                "axes": axes,
                "triton_cache_dir": candidate.get("triton_cache_dir"),
            },
            "loaded",
            timeout,
        )
    except WorkerError as exc:
        contestant.finish()
        g = gone(exc, "importing the candidate", timeout)
        return None, {"status": g.status, "log": g.log}
    failure = reply.get("failure")
    if isinstance(failure, dict):
        status = failure.get("status") if failure.get("status") in CANDIDATE_ERRORS else "RUNTIME_ERROR"
        contestant.finish()
        return None, {"status": status, "log": str(failure.get("log", ""))[-3000:]}
    problems = reply.get("problems") or []
    if problems:
        contestant.finish()
        return None, {"status": "REJECTED", "log": "the candidate: " + "; ".join(map(str, problems))[:3000]}
    return contestant, None


def end_contestants(judge: Any, *contestants: Contestant | None) -> None:
    for c in contestants:
        if c is not None:
            c.finish()
    keep = {p for p in (judge.pool.spare_pid(),) if p is not None}
    kill_strays(keep)


def run_correctness(judge: Any, req: dict[str, Any]) -> None:
    task, workloads = req["task"], req["workloads"]
    if not workloads:
        judge.emit({"type": "done"})
        return
    timeout = float(req.get("timeout", 120.0))
    ref = load_entry(task["reference"], "run", task, "reference", workloads[0]["axes"])
    if ref.failure is not None:
        judge.emit(
            {"type": "done", "reference_problem": f"the task's reference failed to load: {ref.failure.log}"}
        )
        return
    contestant, failure = load_contestant(judge, req, req["candidate"], timeout, workloads[0]["axes"])
    slab: Slab | None = None
    done: dict[str, Any] = {"type": "done"}
    try:
        if failure is not None:
            for wl in workloads:
                judge.emit({"type": "workload", "result": {"workload": wl["id"], **failure}})
            return
        assert contestant is not None
        done["contestant"] = {
            "start_seconds": contestant.proc.last_start_seconds,
            "waited_seconds": judge.pool.last_wait_seconds,
            "sandbox": contestant.hello.get("sandbox"),
        }
        slab = lend_slab(contestant, slab_bytes(workloads), judge.device, timeout)
        stopped: dict[str, Any] | None = None
        for wl in workloads:
            if stopped is not None:
                judge.emit(
                    {
                        "type": "workload",
                        "result": {
                            "workload": wl["id"],
                            "status": stopped["status"],
                            "log": f"not run: evaluation stopped at workload {stopped['workload']} ({stopped['status']})",
                        },
                    }
                )
                continue
            try:
                res = check_workload(
                    judge,
                    contestant,
                    ref,
                    task,
                    wl,
                    slab,
                    int(req.get("trials", 2)),
                    int(req["secret"]),
                    timeout,
                )
            except ContestantGone as exc:
                res = {"workload": wl["id"], "status": exc.status, "log": exc.log}
                stopped = res
            judge.emit({"type": "workload", "result": res})
    except ReferenceProblem as exc:
        done["reference_problem"] = str(exc)
    except Exception as exc:  # noqa: BLE001 - a judge bug ends the request with one done, never two
        done["error"] = f"judge error: {type(exc).__name__}: {exc}"
    finally:
        # The contestant is gone before the verdict is final.
        end_contestants(judge, contestant)
        if slab is not None:
            slab.close()
        judge.emit(done)


def run_check_reference(judge: Any, req: dict[str, Any]) -> None:
    """Run a (possibly LLM-written) reference on small random inputs and check its outputs against the
    definition's shapes and dtypes; used to validate new task definitions before any search."""
    task, problems = req["task"], []
    for wl in req["workloads"]:
        ref = load_entry(task["reference"], "run", task, "reference", wl["axes"])
        if ref.failure is not None:
            problems.append(f"the reference does not load: {ref.failure.log[-1500:]}")
            break
        try:
            inputs = make_inputs(wl["inputs"], derive_seed(int(req["secret"]), wl["id"], "ref"), judge.device)
            with torch.no_grad():
                outs = as_tuple(ref.bind(wl["axes"])(*inputs))
        except Exception as exc:  # noqa: BLE001 - LLM-written code may raise anything
            problems.append(f"workload {wl['id']}: the reference raised {type(exc).__name__}: {exc}"[:1500])
            continue
        try:
            check_reference_outputs(outs, wl)
        except ReferenceProblem as exc:
            problems.append(str(exc))
            continue
        for spec, out in zip(wl["outputs"], outs, strict=True):
            if not bool(torch.isfinite(out.float()).all()):
                problems.append(f"workload {wl['id']}: output {spec['name']!r} has NaN or inf values")
    judge.emit({"type": "done", "problems": problems})
