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
