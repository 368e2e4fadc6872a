"""Pipelining's pieces: the shared slot, the output markers and the depth."""

import os

import pytest

from taskmill.worker.pipeline import (
    MAX_DEPTH,
    STALLED_AFTER,
    Depth,
    Slot,
    Splitter,
    marker,
    new_nonce,
)

NONCE = b"0123456789abcdef"


def _split_all(splitter: Splitter, reads: list[bytes]) -> list[tuple[int | None, bytes]]:
    """Every (seq, bytes) the reads give, joined per run of the same seq, then what is left."""
    parts = [part for data in reads for part in splitter.split(data)]
    parts.append(splitter.flush())
    joined: list[tuple[int | None, bytes]] = []
    for seq, data in parts:
        if not data:
            continue
        if joined and joined[-1][0] == seq:
            joined[-1] = (seq, joined[-1][1] + data)
        else:
            joined.append((seq, data))
    return joined


def test_splitter__gives_each_task_the_bytes_after_its_marker() -> None:
    stream = b"before" + marker(NONCE, 1) + b"one\n" + marker(NONCE, 2) + marker(NONCE, 3) + b"3"

    assert _split_all(Splitter(NONCE), [stream]) == [(None, b"before"), (1, b"one\n"), (3, b"3")]


@pytest.mark.parametrize("cut", range(1, 40))
def test_splitter__a_marker_cut_between_two_reads_still_splits(cut: int) -> None:
    stream = b"one\n" + marker(NONCE, 12) + b"twelve\n"

    parts = _split_all(Splitter(NONCE), [stream[:cut], stream[cut:]])

    assert parts == [(None, b"one\n"), (12, b"twelve\n")]


def test_splitter__bytes_that_only_look_like_a_marker_are_output() -> None:
    lookalikes = [b"\0tm:", b"\0tm:" + NONCE + b":12x\0", marker(b"another-nonce", 5), b"a\0b"]
    stream = marker(NONCE, 1) + b"".join(lookalikes)

    assert _split_all(Splitter(NONCE), [stream]) == [(1, b"".join(lookalikes))]


def test_splitter__a_read_ending_in_a_nul_byte_is_held_back_only_until_the_next() -> None:
    splitter = Splitter(NONCE)
    assert list(splitter.split(marker(NONCE, 1) + b"data\0")) == [(1, b"data")]
    assert list(splitter.split(b"more")) == [(1, b"\0more")]


def test_new_nonce__differs_per_child() -> None:
    assert new_nonce() != new_nonce()


def test_slot__the_child_begins_a_task_unless_held() -> None:
    slot = Slot()

    assert slot.begin(1, received=1)
    assert slot.started_seq == 1
    assert slot.hold(until_received=3) == 1
    # Held: it may begin nothing until it has read the third message.
    assert not slot.begin(2, received=2)
    assert slot.started_seq == 1
    assert slot.begin(2, received=3)
    assert slot.started_seq == 2


def test_slot__holds_never_lower_what_the_child_must_read() -> None:
    slot = Slot()
    slot.hold(until_received=5)
    slot.hold(until_received=4)

    assert not slot.begin(1, received=4)


def test_slot__is_shared_with_a_forked_child() -> None:
    slot = Slot()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        slot.begin(7, received=0)
        slot.add_run(0.25)
        os._exit(0)
    os.waitpid(pid, 0)

    assert slot.started_seq == 7
    assert slot.run_totals() == (1, 0.25)


def test_depth__adapts_to_how_long_tasks_run() -> None:
    depth = Depth()

    assert depth.of(None) == 1, "nothing measured: one at a time"
    assert depth.of(10.0) == 1
    assert depth.of(0.01) == 5
    assert depth.of(0.000_01) == MAX_DEPTH


def test_depth__fixed_is_fixed() -> None:
    assert Depth(fixed=3).of(None) == Depth(fixed=3).of(100.0) == 3


def test_depth__a_long_task_gives_back_its_queue_unless_the_depth_is_fixed() -> None:
    assert Depth().stalled_after == STALLED_AFTER
    assert Depth(fixed=4).stalled_after is None


def test_depth__tasks_with_a_timeout_go_alone_unless_the_depth_is_fixed() -> None:
    assert Depth().goes_alone({"timeout": 30})
    assert not Depth().goes_alone({})
    assert not Depth(fixed=4).goes_alone({"timeout": 30})
