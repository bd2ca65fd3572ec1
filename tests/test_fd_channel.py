"""The fd channel beside a worker's pipes: how a GPU slab's shareable handle reaches a contestant."""

from __future__ import annotations

import os
import socket

import pytest

from ksearch_agent.worker.protocol import ChannelClosed, take_fd


def _pipe_with(data: bytes) -> int:
    r, w = os.pipe()
    os.write(w, data)
    os.close(w)
    return r


def test_a_passed_descriptor_arrives_under_its_tag_and_reads_the_same_file() -> None:
    ours, theirs = socket.socketpair()
    r = _pipe_with(b"slab bytes")
    socket.send_fds(ours, [b"slab-1"], [r])
    os.close(r)
    got = take_fd(theirs, "slab-1")
    try:
        assert os.read(got, 100) == b"slab bytes"
    finally:
        os.close(got)
        ours.close()
        theirs.close()


def test_a_descriptor_under_another_tag_is_refused() -> None:
    ours, theirs = socket.socketpair()
    r = _pipe_with(b"x")
    socket.send_fds(ours, [b"slab-2"], [r])
    os.close(r)
    with pytest.raises(ValueError, match="slab-1"):
        take_fd(theirs, "slab-1")
    ours.close()
    theirs.close()


def test_waiting_for_a_descriptor_that_never_comes_ends_with_an_error() -> None:
    ours, theirs = socket.socketpair()
    with pytest.raises(ChannelClosed, match="no file descriptor"):
        take_fd(theirs, "slab-1", timeout=0.2)
    ours.close()
    with pytest.raises(ChannelClosed, match="closed"):
        take_fd(theirs, "slab-1", timeout=0.2)
    theirs.close()


class _FakeSlab:
    def __init__(self, kind: str) -> None:
        self.kind, self.closed = kind, False

    def handle(self) -> dict[str, str]:
        return {"kind": self.kind, "id": "slab-1"}

    def close(self) -> None:
        self.closed = True


class _Contestant:
    def __init__(self, reply: dict[str, str]) -> None:
        self.reply = reply
        self.asked: list[dict[str, object]] = []

    def ask(self, message: dict[str, object], expect: str, timeout: float) -> dict[str, str]:
        self.asked.append(message)
        return self.reply


@pytest.fixture
def made(monkeypatch: pytest.MonkeyPatch) -> list[_FakeSlab]:
    from ksearch_agent.worker.slab import Slab

    slabs: list[_FakeSlab] = []

    def create(nbytes: int, device: object, *, legacy_ipc: bool = False) -> _FakeSlab:
        slabs.append(_FakeSlab("cuda" if legacy_ipc else "cuda_vmm"))
        return slabs[-1]

    monkeypatch.setattr(Slab, "create", staticmethod(create))
    return slabs


def test_a_gpu_slab_is_mapped_by_the_contestant_before_any_call_names_it(made: list[_FakeSlab]) -> None:
    from ksearch_agent.worker.contestants import lend_slab

    contestant = _Contestant({"type": "mapped"})
    slab = lend_slab(contestant, 1 << 20, "cuda", 5.0)  # type: ignore[arg-type]
    assert slab is made[0] and slab.kind == "cuda_vmm" and not slab.closed
    assert contestant.asked == [{"op": "map", "slab": {"kind": "cuda_vmm", "id": "slab-1"}}]


def test_a_contestant_that_cannot_map_vmm_memory_gets_a_legacy_ipc_slab(made: list[_FakeSlab]) -> None:
    from ksearch_agent.worker.contestants import lend_slab
    from ksearch_agent.worker.slab import FALLBACKS

    refusing = _Contestant({"type": "error", "error": "cuMemImportFromShareableHandle failed: NOT_PERMITTED"})
    slab = lend_slab(refusing, 1 << 20, "cuda", 5.0)  # type: ignore[arg-type]
    assert [s.kind for s in made] == ["cuda_vmm", "cuda"] and made[0].closed
    assert slab is made[1] and "NOT_PERMITTED" in FALLBACKS[-1]


def test_a_slab_that_cannot_be_passed_at_all_falls_back_too(made: list[_FakeSlab]) -> None:
    from ksearch_agent.worker.contestants import lend_slab

    class _Broken(_Contestant):
        def ask(self, message: dict[str, object], expect: str, timeout: float) -> dict[str, str]:
            raise KeyError("slab-1")

    slab = lend_slab(_Broken({}), 1 << 20, "cuda", 5.0)  # type: ignore[arg-type]
    assert slab is made[1] and slab.kind == "cuda" and made[0].closed
