"""profile_h100 in the judge: candidate, reference and optional baseline timed side by side.

The reference runs and is timed in the judge. The candidate (and a baseline, which is candidate code too)
each run in a contestant of their own, timed there, since that is where the launches are: before every
timed call the judge writes fresh inputs into the contestant's slab and flushes the L2 itself; the
contestant brackets the call with events and a device-wide synchronize. The judge does not take those
times on trust:

- before the candidate is imported it times empty calls through the same path, which gives the
  contestant's honest fixed cost, both on the GPU and on its own wall clock (the wall-clock check below
  uses it);
- the fixed cost subtracted from each side's times is measured beside them: an empty call through each
  contestant, and one in the judge, is timed in every round of the interleaving, so the cost the path has
  while the sides are timed is the one removed (calibrated once, it drifted: on an H100 one contestant's
  calibration read 0.039 ms against about 0.015 ms while it was timed, which erased a 0.02 ms kernel);
- it measures the wall time of every timed call and refuses a report that claims more time than the
  wall clock saw, or much less than the wall clock leaves after the fixed cost;
- after a call, unseen by the contestant beforehand, it may overwrite the slab's inputs and ask for that
  call's outputs, and checks them against the reference on that call's inputs ("right first, garbage
  later" fails);
- a time under half the roofline floor (flushed protocol) is refused.

By default the reference is timed in alternation with the contestants, call by call, so clock and thermal
drift cannot tilt the speedup; with a task's ``reference_timing="cached"`` it is timed only when the engine
holds no time for that (task, workload, protocol, launch overlap) yet: the engine keeps the first time a judge
reports and sends it with every request, so every evaluation is divided by one time.
"""

from __future__ import annotations

import functools
import gc
import itertools
import math
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import torch

from ksearch_agent.worker.contestants import Contestant, lend_slab
from ksearch_agent.worker.correctness_job import (
    CANDIDATE_ERRORS,
    ContestantGone,
    Layout,
    end_contestants,
    gone,
    judge_outputs,
    load_contestant,
    slab_bytes,
)
from ksearch_agent.worker.inputs import derive_seed, make_inputs
from ksearch_agent.worker.process import WorkerError
from ksearch_agent.worker.protocol import reference_key
from ksearch_agent.worker.session import as_tuple, load_entry, release_cached_memory
from ksearch_agent.worker.slab import FALLBACKS, Slab
from ksearch_agent.worker.timing import Timer, _quantile, cached_ceilings

CHECK_PROBABILITY = 0.1
MAX_CHECKS = 8
NULL_CALLS = 30
# interleaved empty calls a side's fixed cost needs before it replaces the calibrated one
MIN_INTERLEAVED_NULLS = 5
NULL_PREFIX = "null:"
JUDGE_NULL = NULL_PREFIX + "judge"
JUDGE_GATED_NULL = NULL_PREFIX + "judge gated"
# Judge-side sides timed with the spin even where the task asks for a launch gate: they synchronize with the device
# inside the call (the FIB references read their page tables on the host, plan() copies them), which would wait on
# the gate until its cap. The figures they give (x reference, library with plan) count host work anyway.
UNGATED_SIDES = frozenset({"reference", "library_plan"})
TRACE = os.environ.get("KSEARCH_JUDGE_TRACE") == "1"  # per-call timing lines in the judge's log
# Wall time beyond the calibrated fixed cost that a call's report may leave unexplained: host work outside
# the events differs between an empty call and a real one (an H100 showed up to ~0.4 ms), so only larger
# under-reports are caught.
TIMING_SLACK_MS = 0.5


class CallFailed(Exception):
    def __init__(self, status: str, log: str) -> None:
        super().__init__(log)
        self.status, self.log = status, log


class Player:
    """A contestant as the judge times it: its slab, its honest fixed costs and its record per workload."""

    def __init__(self, name: str, contestant: Contestant, slab: Slab, timeout: float) -> None:
        self.name, self.contestant, self.slab, self.timeout = name, contestant, slab, timeout
        self.null_ms = 0.0
        self.null_wall_ms = 0.0
        self.lead_cycles = 0
        self.gate_us = 0.0
        self.walls: list[float] = []
        self.checked = 0
        self.dead: ContestantGone | None = None

    def _ask(self, message: dict[str, Any], expect: str) -> dict[str, Any]:
        try:
            return self.contestant.ask(message, expect, self.timeout)
        except WorkerError as exc:
            self.dead = gone(exc, f"being timed ({message.get('op')})", self.timeout)
            raise CallFailed(self.dead.status, self.dead.log) from None

    def calibrate(self, timer: Timer) -> None:
        """Empty calls before any candidate code is imported: what the path costs when nothing runs.

        Each is preceded by the judge's own pre-call GPU work (the L2 flush and a synchronize), as every
        timed call is, so the switch between the judge's and the contestant's GPU contexts is part of
        the measured fixed cost, on the GPU and on the wall clock.
        """
        reported, walls = [], []
        self.lead_cycles = timer.lead_cycles()
        self.gate_us = timer.gate_us
        for _ in range(NULL_CALLS):
            timer.flush()
            torch.cuda.synchronize()
            ms, wall = self.time_null("flushed")
            reported.append(ms)
            walls.append(wall)
        self.null_ms = statistics.median(reported[5:])
        self.null_wall_ms = statistics.median(walls[5:])
        if TRACE:
            print(
                f"calibrated {self.name}: null {self.null_ms:.4f} ms, wall {self.null_wall_ms:.4f} ms",
                file=sys.stderr,
                flush=True,
            )

    def _lead(self, protocol: str) -> dict[str, Any]:
        """What a timed request asks to queue before its start event: the spin, or the gate; neither for GPUMode."""
        if protocol == "gpumode":
            return {"protocol": protocol, "lead_cycles": 0, "gate_us": 0.0}
        return {"protocol": protocol, "lead_cycles": self.lead_cycles, "gate_us": self.gate_us}

    def time_null(self, protocol: str) -> tuple[float, float]:
        """One empty call through the timed path (the caller has flushed and synchronized as for a real one):
        the time it reported, held to the judge's wall clock around the request, and that wall time."""
        t0 = time.perf_counter()
        reply = self._ask({"op": "time", "null": True, **self._lead(protocol)}, "timed")
        wall = (time.perf_counter() - t0) * 1e3
        ms = reply.get("ms")
        if not isinstance(ms, int | float) or not 0 <= ms < float("inf"):
            raise CallFailed("RUNTIME_ERROR", f"the contestant's empty calls were not timed: {reply}"[:500])
        if TRACE:
            print(
                f"null {self.name} wall {wall:.3f} ms reported {ms:.3f} ms host {reply.get('host')}",
                file=sys.stderr,
                flush=True,
            )
        return min(float(ms), wall), wall

    def time_once(self, wl: dict[str, Any], layout: Layout, protocol: str) -> float:
        t0 = time.perf_counter()
        reply = self._ask(
            {
                "op": "time",
                "slab": self.slab.handle(),
                **layout.json,
                "axes": wl["axes"],
                **self._lead(protocol),
            },
            "timed",
        )
        wall = (time.perf_counter() - t0) * 1e3
        err = reply.get("error")
        if err is not None:
            status = err.get("status") if isinstance(err, dict) else None
            log = str(err.get("log", "")) if isinstance(err, dict) else str(err)
            raise CallFailed(status if status in CANDIDATE_ERRORS else "RUNTIME_ERROR", log[-3000:])
        problems = reply.get("problems") or []
        if problems:
            raise CallFailed("REJECTED", "the candidate: " + "; ".join(map(str, problems))[:3000])
        ms = reply.get("ms")
        if not isinstance(ms, int | float) or not ms == ms or ms < 0 or ms == float("inf"):
            raise CallFailed("REJECTED", f"[timing] the contestant reported {str(ms)[:40]!r} as a call time")
        if float(ms) > wall + 0.05:
            raise CallFailed(
                "REJECTED",
                f"[timing] a call reported {ms:.3f} ms, more than the {wall:.3f} ms the "
                "judge's wall clock saw",
            )
        self.walls.append(wall)
        if TRACE:
            print(
                f"timed {self.name} wall {wall:.3f} ms reported {ms:.3f} ms host {reply.get('host')}",
                file=sys.stderr,
                flush=True,
            )
        return float(ms)

    def check_output(
        self,
        wl: dict[str, Any],
        layout: Layout,
        inputs: list[torch.Tensor],
        ref_fn: Any,
        task: dict[str, Any],
        call_no: int,
    ) -> None:
        """Hide the call's inputs, then ask for its outputs and compare them with the reference's."""
        in_views = [self.slab.view(r) for r in layout.inputs]
        for v in in_views:
            v.view(torch.uint8).fill_(0xFF) if v.dtype != torch.bool else v.fill_(False)
        out_views = [self.slab.view(r) for r in layout.outputs]
        self.slab.raw[layout.out_start : layout.out_end].fill_(0xFF)
        torch.cuda.synchronize()
        reply = self._ask({"op": "export", "slab": self.slab.handle(), **layout.json}, "exported")
        if reply.get("error") is not None:
            raise CallFailed(
                "RUNTIME_ERROR", f"[incomplete] timed call {call_no}: {str(reply['error'])[:500]}"
            )
        with torch.no_grad():
            expected = tuple(t.detach() for t in as_tuple(ref_fn(*[t.clone() for t in inputs])))
        res = judge_outputs(reply.get("outputs"), out_views, expected, task)
        self.checked += 1
        if res["status"] != "PASSED":
            raise CallFailed(
                res["status"],
                f"[timed-output] timed call {call_no} (checked after it ran, on its "
                f"own fresh inputs): {res.get('log', '')}",
            )

    def audit(self) -> str | None:
        """Threads, processes and streams the candidate left since it was imported (checked per batch,
        not per timed call)."""
        reply = self._ask({"op": "audit"}, "audited")
        problems = reply.get("problems") or []
        return "the candidate: " + "; ".join(map(str, problems))[:3000] if problems else None

    def timing_problem(self, reported: list[float], overhead_ms: float) -> str | None:
        """A report that leaves much of the judge's wall clock unexplained, after the fixed cost that is
        subtracted from it (``overhead_ms``: the empty calls come from the candidate's process too, so an
        inflated fixed cost is held to this check as an under-reported call is)."""
        if not reported or not self.walls:
            return None
        real_from_wall = statistics.median(self.walls) - self.null_wall_ms
        real_reported = statistics.median(reported) - overhead_ms
        if real_reported < 0.5 * real_from_wall - TIMING_SLACK_MS:
            return (
                f"[timing] the contestant's timer reported a median of {real_reported:.3f} ms per call, less than "
                f"half of the {real_from_wall:.3f} ms the judge's wall clock saw beyond the path's fixed cost"
            )
        return None


PLAUSIBLE_FLOOR_FRACTION = 0.5
"""A timed call faster than this fraction of the roofline floor is refused as a timing forgery. The floor
(bytes / the copy bandwidth torch measures, or FLOPs / the measured GEMM rate) is not a hard limit for an
honest kernel: a 1 GB ``copy_`` reaches about 90% of the HBM peak, and output writes that fit in the L2 stay
there (write-back) until after the end event, so a kernel whose traffic is half writes can legitimately beat
the floor by up to about 2x (an rmsnorm on the H100 ran at 0.90x its floor). Forgeries that skip the work or
hide it from the events come in far faster than that, and the wall-clock and timed-output checks catch the
rest."""


def _roofline(wl: dict[str, Any], latency_ms: float, ceilings: dict[str, Any], unit: str) -> dict[str, Any]:
    peak_tflops = ceilings["bf16_tflops"] if unit == "bf16_tensor_core" else ceilings["fp32_tflops"]
    floor_ms = max(wl["flops"] / (peak_tflops * 1e9), wl["bytes"] / (ceilings["copy_gbps"] * 1e6))
    seconds = latency_ms / 1e3
    return {
        "tflops": wl["flops"] / seconds / 1e12 if seconds > 0 else None,
        "gbps": wl["bytes"] / seconds / 1e9 if seconds > 0 else None,
        "floor_ms": floor_ms,
        "roofline_fraction": floor_ms / latency_ms if latency_ms > 0 else None,
        "plausible": latency_ms >= PLAUSIBLE_FLOOR_FRACTION * floor_ms,
    }


WARMUP_MS = 150.0
WARMUP_WALL_S = 1.0
WARMUP_MAX_CALLS = 1000


def warm_up(call: Callable[[], float | None], clock: Callable[[], float] = time.perf_counter) -> float | None:
    """Calls ``call`` (one timed call, None once it failed) until it has timed WARMUP_MS over at least 3 calls;
    also stops after WARMUP_WALL_S of wall time or WARMUP_MAX_CALLS calls. Returns the last time, or None.

    The wall cap matters where fresh inputs cost far more than the call: a 0.09 ms MLA decode call on a
    1.1 GB cache needs its inputs made and copied (milliseconds) every call, so 150 ms of timed work would
    take over a thousand such calls per player and workload.
    """
    start = clock()
    spent, calls, last = 0.0, 0, 0.0
    while (calls < 3 or (spent < WARMUP_MS and clock() - start < WARMUP_WALL_S)) and calls < WARMUP_MAX_CALLS:
        got = call()
        if got is None:
            return None
        last, spent, calls = got, spent + got, calls + 1
    return last


MIN_ROUNDS = 10
MAX_ROUNDS = 200
ROUNDS_WALL_S = 3.0
MIN_STRIDED_CALLS = 3
SLOW_SIDES = frozenset({"reference"})


def sampling_plan(probes: dict[str, float], budget_ms: float) -> tuple[int, dict[str, int]]:
    """How many interleaved rounds to time, and per side every how many rounds it is called.

    The rounds are sized by the slowest of the sides a score compares (candidate, baseline, library with
    and without its plan), MIN_ROUNDS to MAX_ROUNDS, so ``budget_ms`` of that side's time is spent. The
    reference (SLOW_SIDES) only gives the "x reference" figure; a reference far slower than the kernels
    (FlashInfer-Bench's per-sequence Python loops take 5-50 ms against 0.01-0.1 ms) is called on every k-th
    round instead, at least MIN_ROUNDS times, and no longer caps the compared sides at MIN_ROUNDS calls
    each. Still interleaved, so drift reaches every side alike.
    """
    compared = [ms for name, ms in probes.items() if name not in SLOW_SIDES] or list(probes.values())
    rounds = int(max(MIN_ROUNDS, min(MAX_ROUNDS, budget_ms / max(max(compared, default=1.0), 1e-3))))
    every: dict[str, int] = {}
    for name, ms in probes.items():
        if name in SLOW_SIDES:
            calls = int(max(MIN_ROUNDS, min(rounds, budget_ms / max(ms, 1e-3))))
            every[name] = max(1, math.ceil(rounds / calls))
        else:
            every[name] = 1
    return rounds, every


def in_judge(name: str) -> bool:
    """Whether side ``name`` is timed in the judge's process (the reference, the library) or a contestant's."""
    from ksearch_agent.opponents.judge_side import NAMES

    return name == "reference" or name in NAMES


def null_of(name: str, gated: bool = False) -> str:
    """The name of the empty calls that give side ``name``'s fixed cost (``gated``: the task times behind a
    launch gate, which the judge's sides other than UNGATED_SIDES use)."""
    if not in_judge(name):
        return NULL_PREFIX + name
    return JUDGE_GATED_NULL if gated and name not in UNGATED_SIDES else JUDGE_NULL


class WorkloadTimer:
    """Times the reference (in the judge) and the players (contestants) on one workload."""

    def __init__(
        self,
        judge: Any,
        req: dict[str, Any],
        wl: dict[str, Any],
        ref_fn: Any,
        players: dict[str, Player],
        opponent: Any = None,
    ) -> None:
        self.judge, self.req, self.wl, self.ref_fn = judge, req, wl, ref_fn
        self.players = players
        self.opponent = opponent  # an opponents.judge_side.OpponentRunner, timed here like the reference
        self.timer: Timer = judge.timer
        self.layout = Layout.of(wl)
        self.protocol = req.get("protocol", "flushed")
        self.gated = self.timer.gate_us > 0 and self.protocol != "gpumode"  # behind the task's launch gate
        self.same_inputs = self.protocol in ("gpumode", "hot")  # made once, no fresh values per call
        self.secret = int(req["secret"])
        self.counter = itertools.count()
        self.rng = random.Random(derive_seed(self.secret, wl["id"], "checks"))
        self.failures: dict[str, CallFailed] = {}
        self.null_samples: dict[str, list[float]] = {}
        self.reported: dict[str, list[float]] = {name: [] for name in players}
        self.same: list[torch.Tensor] | None = None
        self.ref_bufs: list[torch.Tensor] | None = None
        # hot protocol: the players whose slab still holds this workload's inputs (an output check overwrites them)
        self.inputs_in_slab: set[str] = set()

    def fresh(self) -> list[torch.Tensor]:
        if self.same_inputs:
            if self.same is None:
                self.same = make_inputs(
                    self.wl["inputs"], derive_seed(self.secret, self.wl["id"], "profile"), self.judge.device
                )
            return self.same
        return make_inputs(
            self.wl["inputs"],
            derive_seed(self.secret, self.wl["id"], "call", next(self.counter)),
            self.judge.device,
        )

    def reference_call(self) -> float:
        inputs = self.fresh()
        if self.same_inputs:
            return self.timer.call_ms(self.ref_fn, inputs, protocol=self.protocol, gated=False)
        # The same buffers every call, refilled with fresh values, as the contestant's slab is: a candidate
        # and the reference it is compared with meet the same memory regime (fresh allocations per call
        # would charge only one side for new pages and allocator churn).
        if self.ref_bufs is None:
            self.ref_bufs = [torch.empty_like(t) for t in inputs]
        for buf, t in zip(self.ref_bufs, inputs, strict=True):
            buf.copy_(t)
        return self.timer.call_ms(self.ref_fn, self.ref_bufs, gated=False)

    def player_call(self, player: Player, checked: bool) -> float:
        inputs = self.fresh()
        if self.protocol != "hot" or player.name not in self.inputs_in_slab:
            for view, t in zip((player.slab.view(r) for r in self.layout.inputs), inputs, strict=True):
                view.copy_(t)
            self.inputs_in_slab.add(player.name)
        if self.protocol == "flushed":
            self.timer.flush()
        torch.cuda.synchronize()
        ms = player.time_once(self.wl, self.layout, self.protocol)
        self.reported[player.name].append(ms)
        if (
            checked
            and player.checked < MAX_CHECKS
            and (self.rng.random() < CHECK_PROBABILITY or player.checked == 0)
        ):
            self.inputs_in_slab.discard(player.name)  # the check overwrites the slab's inputs
            player.check_output(
                self.wl, self.layout, inputs, self.ref_fn, self.req["task"], len(self.reported[player.name])
            )
        return ms

    def null_call(self, name: str) -> float:
        """An empty call through ``name``'s timed path (``JUDGE_NULL``: the judge's), prepared as a real call is."""
        if name in (JUDGE_NULL, JUDGE_GATED_NULL):
            return self.timer.call_ms(
                lambda: None, [], protocol=self.protocol, gated=name == JUDGE_GATED_NULL
            )
        if self.protocol == "flushed":
            self.timer.flush()
        torch.cuda.synchronize()
        return self.players[name.removeprefix(NULL_PREFIX)].time_null(self.protocol)[0]

    def overhead_ms(self, name: str, calibrated: float) -> float:
        """The fixed cost to subtract from ``name``'s times: the median of the empty calls interleaved with
        them, or ``calibrated`` where too few of those were timed."""
        got = self.null_samples.get(null_of(name, self.gated), [])
        return statistics.median(got) if len(got) >= MIN_INTERLEAVED_NULLS else calibrated

    def _one(self, name: str, checked: bool) -> float:
        ms = self._call(name, checked)
        if TRACE:  # every side's samples in call order, for offline paired analyses
            print(f"sample {self.wl['id'][:8]} {name} {ms:.5f}", file=sys.stderr, flush=True)
        return ms

    def _call(self, name: str, checked: bool) -> float:
        if name.startswith(NULL_PREFIX):
            return self.null_call(name)
        if name == "reference":
            return self.reference_call()
        if name in ("library", "library_plan"):
            return self.opponent.call_ms(self.fresh(), self.ref_fn, name == "library_plan", self.protocol)
        return self.player_call(self.players[name], checked)

    def run(self, names: list[str], budget_ms: float) -> dict[str, list[float]]:
        """Samples per name, interleaved call by call; a player that fails drops out, the rest go on.

        Outside GPUMode's protocol every round also times an empty call through each side's path (kept in
        ``null_samples``, read through ``overhead_ms``).
        """
        nulls = (
            [] if self.protocol == "gpumode" else list(dict.fromkeys(null_of(n, self.gated) for n in names))
        )
        samples: dict[str, list[float]] = {n: [] for n in [*names, *nulls]}
        live = [*names, *nulls]

        def attempt(name: str, checked: bool) -> float | None:
            try:
                return self._one(name, checked)
            except CallFailed as exc:
                live.remove(name)
                if not name.startswith(NULL_PREFIX):  # a lost contestant fails its own side's next call
                    self.failures[name] = exc
                    sides = [n for n in live if not n.startswith(NULL_PREFIX)]
                    null = null_of(name, self.gated)
                    if null in live and all(null_of(n, self.gated) != null for n in sides):
                        live.remove(null)  # no side left whose fixed cost it gives
                return None

        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            with torch.no_grad():
                probes: dict[str, float] = {}
                for name in [n for n in live if n not in nulls]:
                    last = warm_up(functools.partial(attempt, name, False))
                    if last is not None:
                        probes[name] = last
                if self.protocol == "gpumode":
                    self._gpumode(live, samples, attempt)
                else:
                    self._rounds(live, samples, attempt, sampling_plan(probes, budget_ms))
        finally:
            if gc_was_enabled:
                gc.enable()
        self.null_samples = {n: samples.pop(n) for n in nulls}
        return {n: s for n, s in samples.items() if n in live and s}

    def _rounds(
        self,
        live: list[str],
        samples: dict[str, list[float]],
        attempt: Callable[[str, bool], float | None],
        plan: tuple[int, dict[str, int]],
    ) -> None:
        """The flushed and hot protocols' interleaved rounds, as ``sampling_plan`` sized them; they stop early after
        ROUNDS_WALL_S (past MIN_ROUNDS), and a side called every k-th round still ends with MIN_STRIDED_CALLS."""
        rounds, every = plan
        start = time.perf_counter()
        for i in range(rounds):
            for name in list(live):
                if i % every.get(name, 1) == 0 and (got := attempt(name, True)) is not None:
                    samples[name].append(got)
            if not live or (i + 1 >= MIN_ROUNDS and time.perf_counter() - start > ROUNDS_WALL_S):
                break
        for name in [n for n in live if every.get(n, 1) > 1]:
            while name in live and len(samples[name]) < MIN_STRIDED_CALLS:
                if (got := attempt(name, True)) is not None:
                    samples[name].append(got)

    def _gpumode(
        self, live: list[str], samples: dict[str, list[float]], attempt: Callable[[str, bool], float | None]
    ) -> None:
        """GPUMode's rule per callable: up to 100 calls, stop when the relative standard error < 0.1% or 10 s."""
        for name in list(live):
            t_start = time.perf_counter()
            for i in range(100):
                got = attempt(name, True)
                if got is None:
                    break
                samples[name].append(got)
                vals = samples[name]
                if i > 1:
                    mean = statistics.fmean(vals)
                    stderr = statistics.stdev(vals) / len(vals) ** 0.5
                    if stderr / max(mean, 1e-9) < 0.001 or time.perf_counter() - t_start > 10.0:
                        break


def _stats(net: list[float], overhead: float, protocol: str) -> dict[str, Any]:
    if protocol == "gpumode":
        return {
            "protocol": "gpumode",
            "mean_ms": statistics.fmean(net),
            "median_ms": statistics.median(net),
            "iters": len(net),
            "iqr_ms": _quantile(net, 0.75) - _quantile(net, 0.25),
            "latency_ms": statistics.fmean(net),
        }
    stats = Timer._stats([max(s - overhead, 0.0) for s in net], overhead)
    stats.update(protocol=protocol, latency_ms=stats["median_ms"])
    return stats


def _take_player(
    judge: Any,
    req: dict[str, Any],
    name: str,
    spec: dict[str, Any],
    workloads: list[dict[str, Any]],
    timeout: float,
) -> tuple[Player | None, dict[str, Any] | None]:
    try:
        contestant = judge.pool.take()
    except WorkerError as exc:
        return None, {"status": "RUNTIME_ERROR", "log": f"the contestant process failed to start: {exc}"}
    try:
        slab = lend_slab(contestant, slab_bytes(workloads), judge.device, timeout)
    except WorkerError as exc:
        contestant.finish()
        return None, {"status": "RUNTIME_ERROR", "log": f"the contestant could not map its slab: {exc}"}
    player = Player(name, contestant, slab, timeout)
    try:
        player.calibrate(judge.timer)
    except CallFailed as exc:
        contestant.finish()
        slab.close()
        return None, {
            "status": "RUNTIME_ERROR",
            "log": f"the contestant failed before the candidate was imported: {exc.log}",
        }
    loaded, failure = load_contestant(judge, req, spec, timeout, workloads[0]["axes"], contestant=contestant)
    if failure is not None:
        slab.close()
        return None, failure
    return player, None


def run_profile(judge: Any, req: dict[str, Any]) -> None:
    if judge.mode != "gpu":
        judge.emit({"type": "done", "error": "profiling needs a GPU worker; speed was not measured"})
        return
    task, workloads = req["task"], req["workloads"]
    if not workloads:
        judge.emit({"type": "done"})
        return
    if judge.timer is None:
        judge.timer = Timer(judge.device)
    judge.timer.lead_us = float(task.get("launch_overlap_us") or 0.0)
    judge.timer.gate_us = float(task.get("launch_gate_us") or 0.0)
    timeout = float(req.get("timeout", 300.0))
    ceilings = cached_ceilings(judge.device, req.get("ceilings_file"))
    ref = load_entry(task["reference"], "run", task, "reference", workloads[0]["axes"])
    if ref.failure is not None:
        judge.emit(
            {"type": "done", "reference_problem": f"the task's reference failed to load: {ref.failure.log}"}
        )
        return
    fallbacks_before = len(FALLBACKS)
    players: dict[str, Player] = {}
    failed: dict[str, dict[str, Any]] = {}
    specs = {"candidate": req["candidate"]}
    if req.get("baseline"):
        specs["baseline"] = req["baseline"]
    protocol = req.get("protocol", "flushed")
    from ksearch_agent.opponents.judge_side import start_opponent

    opponent, opponent_info = start_opponent(req.get("opponent"), judge.device)
    try:
        for name, spec in specs.items():
            player, failure = _take_player(judge, req, name, spec, workloads, timeout)
            if player is not None:
                players[name] = player
            elif failure is not None:
                failed[name] = failure
        for wl in workloads:
            result = _profile_workload(
                judge, req, task, wl, ref, players, failed, ceilings, protocol, opponent
            )
            judge.emit({"type": "workload", "result": result})
            # The reference keeps its cache while its workload is timed (emptying it per call would charge it
            # for allocations), not into the next workload.
            release_cached_memory(judge.device)
    finally:
        end_contestants(judge, *(p.contestant for p in players.values()))
        for p in players.values():
            p.slab.close()
    judge.emit(
        {
            "type": "done",
            "ceilings": ceilings,
            "sync_overhead_ms": judge.timer.sync_overhead_ms(),
            "launch_overlap_us": judge.timer.lead_us,
            "launch_gate_us": judge.timer.gate_us,
            "slab_fallbacks": FALLBACKS[fallbacks_before:][-3:],
            "device_name": torch.cuda.get_device_name(judge.device),
            "contestant_overhead_ms": {n: p.null_ms for n, p in players.items()},
            "contestant_wall_overhead_ms": {n: p.null_wall_ms for n, p in players.items()},
            "opponent": opponent_info or None,
        }
    )


def _profile_workload(
    judge: Any,
    req: dict[str, Any],
    task: dict[str, Any],
    wl: dict[str, Any],
    ref: Any,
    players: dict[str, Player],
    failed: dict[str, dict[str, Any]],
    ceilings: dict[str, Any],
    protocol: str,
    opponent: Any = None,
) -> dict[str, Any]:
    from ksearch_agent.opponents.judge_side import NAMES, OpponentRunner, opponent_fields

    result: dict[str, Any] = {"workload": wl["id"], "protocol": protocol}
    key = reference_key(task["name"], wl["id"], protocol, task.get("launch_overlap_us") or 0.0)
    live = {n: p for n, p in players.items() if p.dead is None}
    for name, p in players.items():
        if p.dead is not None:
            failed[name] = {
                "status": p.dead.status,
                "log": f"not run: the contestant was lost earlier ({p.dead.status})",
            }
    # cached reference timing: the time the engine already holds for this workload (engine.ReferenceTimes)
    known = (req.get("reference_times") or {}).get(key) if req.get("reference_timing") == "cached" else None
    names = list(live)
    if known is None:
        names.insert(1 if "candidate" in live else 0, "reference")
    runner = OpponentRunner(opponent, wl, judge.timer, task) if opponent is not None else None
    if runner is not None:
        names += list(NAMES)
    wt = WorkloadTimer(judge, req, wl, ref.bind(wl["axes"]), live, runner)
    samples = wt.run(names, float(req.get("budget_ms", 500.0)))
    for name, exc in wt.failures.items():
        failed[name] = {"status": exc.status, "log": exc.log}
    if "candidate" in failed:
        result.update(status=failed["candidate"]["status"], log=failed["candidate"]["log"])
        if players.get("candidate") is None or players["candidate"].dead is None:
            failed.pop("candidate", None)  # a failure on this workload only
    stats: dict[str, dict[str, Any]] = {}
    overheads: dict[str, float] = {}
    for name, vals in samples.items():
        gated = wt.gated and name not in UNGATED_SIDES
        calibrated = judge.timer.sync_overhead_ms(gated) if in_judge(name) else live[name].null_ms
        overheads[name] = wt.overhead_ms(name, calibrated)
        stats[name] = _stats(vals, overheads[name], protocol)
        stats[name]["null_calls"] = len(wt.null_samples.get(null_of(name, wt.gated), []))
    result["fixed_costs"] = {n: {"ms": overheads[n], "null_calls": stats[n]["null_calls"]} for n in stats}
    result["timed_calls"] = {n: stats[n]["iters"] for n in stats}
    for name in live:
        if name not in stats:
            continue
        problem = live[name].timing_problem(samples[name], overheads[name])
        if problem is None:
            try:
                problem = live[name].audit()
            except CallFailed as exc:
                problem = exc.log
        if problem is not None:
            stats.pop(name)
            if name == "candidate":
                result.update(status="REJECTED", log=problem)
    ref_stats = stats.get("reference") or known
    if ref_stats:
        result["reference_latency_ms"] = ref_stats["latency_ms"]
        result["reference_stats"] = ref_stats
    if "candidate" in stats and "status" not in result:
        c = stats["candidate"]
        result.update(
            status="PASSED",
            latency_ms=c["latency_ms"],
            iqr_ms=c["iqr_ms"],
            stats=c,
            wall_ms=statistics.median(live["candidate"].walls[-len(samples["candidate"]) :]),
            checked_calls=live["candidate"].checked,
        )
        result.update(_roofline(wl, c["latency_ms"], ceilings, task["compute_unit"]))
        if protocol == "flushed" and result["plausible"] is False:
            result.update(
                status="REJECTED",
                log=f"[timing] {c['latency_ms']:.4f} ms is below the roofline floor "
                f"({result['floor_ms']:.4f} ms) of this device",
            )
        if result.get("reference_latency_ms") and c["latency_ms"] > 0:
            result["speedup"] = result["reference_latency_ms"] / c["latency_ms"]
    elif "status" not in result:
        why = failed.get("candidate", {"status": "RUNTIME_ERROR", "log": "the candidate was not timed"})
        result.update(status=why["status"], log=why["log"])
    result.update(opponent_fields(stats, wt.failures, runner))
    if "baseline" in stats:
        result["baseline_latency_ms"] = stats["baseline"]["latency_ms"]
        if result.get("latency_ms"):
            result["speedup_vs_baseline"] = stats["baseline"]["latency_ms"] / result["latency_ms"]
    elif "baseline" in failed:
        result["baseline_log"] = failed["baseline"]["log"][:1000]
    return result
