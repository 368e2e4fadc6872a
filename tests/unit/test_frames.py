"""Frames from a child to its supervisor: every frame whole and in order, however the bytes
arrive."""

import contextlib
import os
import socket
from collections.abc import Iterator

import pytest

from taskmill.worker.frames import FrameReader, frame, write_all


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, FrameReader]]:
    writer, reading_end = socket.socketpair()
    reader = FrameReader(reading_end.fileno())
    reading_end.close()  # the reader holds a duplicate of its own
    yield writer, reader
    writer.close()
    reader.close()


def test_read_frames__takes_every_waiting_frame_in_one_call(
    pair: tuple[socket.socket, FrameReader],
) -> None:
    writer, reader = pair
    for data in (b"one", b"", b"three"):
        write_all(writer.fileno(), frame(data))

    assert reader.read_frames() == [b"one", b"", b"three"]
    assert reader.read_frames() == []


def test_read_frames__keeps_a_partial_frame_until_the_rest_arrives(
    pair: tuple[socket.socket, FrameReader],
) -> None:
    writer, reader = pair
    data = frame(b"first") + frame(b"second")
    cut = len(frame(b"first")) + 2  # inside the second frame's length

    writer.sendall(data[:cut])
    assert reader.read_frames() == [b"first"]
    writer.sendall(data[cut:-1])
    assert reader.read_frames() == []
    writer.sendall(data[-1:])
    assert reader.read_frames() == [b"second"]


def test_read_frames__a_frame_larger_than_one_read_comes_whole(
    pair: tuple[socket.socket, FrameReader],
) -> None:
    writer, reader = pair
    big = os.urandom(700_000)
    writer.setblocking(False)
    sent = frame(big) + frame(b"after")
    frames: list[bytes] = []
    while sent:
        with contextlib.suppress(BlockingIOError):
            sent = sent[writer.send(sent) :]
        frames += reader.read_frames()
    frames += reader.read_frames()

    assert frames == [big, b"after"]


def test_read_frames__says_when_the_other_end_is_gone(
    pair: tuple[socket.socket, FrameReader],
) -> None:
    writer, reader = pair
    write_all(writer.fileno(), frame(b"last"))
    writer.close()

    assert reader.read_frames() == [b"last"]
    # A short read ends a call (nothing more was waiting), so the end shows on the next one.
    assert reader.read_frames() == []
    assert reader.at_end
