"""The pieces of output capture and progress that need no process: cutting, capping,
decoding, throttling, validating."""

import threading
import uuid

import pytest
from django.utils import timezone

from taskmill.context import ProgressThrottle, progress_report
from taskmill.output import StoredProgress
from taskmill.worker.capture import CHUNK_CHARS, OutputCollector

TASK_ID = uuid.uuid4()


def _collector(cap: int = 1024) -> OutputCollector:
    collector = OutputCollector(TASK_ID, attempt=2, cap=cap)
    collector.next_seq = 5
    return collector


def _rows(collector: OutputCollector) -> list[tuple[int, str, str]]:
    return [(c.seq, c.stream, c.text) for c in collector.take_chunks(timezone.now())]


def test_consecutive_writes_of_one_stream_share_a_chunk_and_streams_keep_their_order() -> None:
    collector = _collector()
    collector.feed("stdout", b"a\n")
    collector.feed("stdout", b"b\n")
    collector.feed("stderr", b"oops\n")
    collector.feed("stdout", b"c")
    assert _rows(collector) == [
        (5, "stdout", "a\nb\n"),
        (6, "stderr", "oops\n"),
        (7, "stdout", "c"),
    ]


def test_chunks_carry_the_attempt_and_stay_until_written() -> None:
    collector = _collector()
    collector.feed("log", b"INFO x: y\n")
    first = collector.take_chunks(timezone.now())
    assert [(c.task_id, c.attempt) for c in first] == [(TASK_ID, 2)]
    collector.feed("log", b"more\n")
    # Not yet written: the earlier row comes again, with the new one.
    assert [c.seq for c in collector.take_chunks(timezone.now())] == [5, 6]
    collector.written()
    assert not collector.has_unwritten


def test_a_character_split_between_two_reads_is_decoded_whole() -> None:
    collector = _collector()
    encoded = "é".encode()
    collector.feed("stdout", encoded[:1])
    collector.feed("stdout", encoded[1:])
    assert _rows(collector) == [(5, "stdout", "é")]


def test_invalid_utf8_is_replaced_not_fatal() -> None:
    collector = _collector()
    collector.feed("stdout", b"\xff\xfe ok")
    collector.finish()
    assert _rows(collector) == [(5, "stdout", "\ufffd\ufffd ok")]


def test_output_past_the_cap_is_counted_and_marked() -> None:
    collector = _collector(cap=10)
    collector.feed("stdout", b"0123456")
    collector.feed("stdout", b"789abc")
    collector.feed("stderr", b"dropped too")
    collector.finish()
    assert _rows(collector) == [
        (5, "stdout", "0123456789"),
        (
            6,
            "marker",
            "output truncated: the log cap of 10 bytes was reached (TASKMILL['LOG_CAP_BYTES'])\n"
            "14 more bytes were dropped\n",
        ),
    ]


def test_long_text_is_cut_into_chunks_of_bounded_size() -> None:
    collector = _collector(cap=3 * CHUNK_CHARS)
    collector.feed("stdout", b"x" * (2 * CHUNK_CHARS + 1))
    assert [len(text) for _, _, text in _rows(collector)] == [CHUNK_CHARS, CHUNK_CHARS, 1]


def test_finish_twice_adds_one_marker() -> None:
    collector = _collector(cap=1)
    collector.feed("stdout", b"ab")
    collector.finish()
    collector.finish()
    assert [stream for _, stream, _ in _rows(collector)] == ["stdout", "marker"]


def test_throttle_sends_the_first_report_at_once_and_the_latest_after_the_interval() -> None:
    sent: list[StoredProgress] = []
    arrived = threading.Event()

    def send(report: StoredProgress) -> None:
        sent.append(report)
        if report["done"] == 3:
            arrived.set()

    throttle = ProgressThrottle(send=send, interval=0.05)
    for done in (1, 2, 3):
        throttle.report(progress_report(done, 3, ""))
    assert [r["done"] for r in sent] == [1]
    assert arrived.wait(timeout=5), "the held-back report never arrived"
    assert [r["done"] for r in sent] == [1, 3]


def test_throttle_flush_sends_what_is_held_back_once() -> None:
    sent: list[StoredProgress] = []
    throttle = ProgressThrottle(send=sent.append, interval=60)
    throttle.report(progress_report(1, None, ""))
    throttle.report(progress_report(2, None, "last"))
    throttle.flush()
    throttle.flush()
    assert [(r["done"], r["message"]) for r in sent] == [(1, ""), (2, "last")]


@pytest.mark.parametrize(
    ("done", "total", "message", "error"),
    [
        ("1", None, "", TypeError),
        (True, None, "", TypeError),
        (float("nan"), None, "", TypeError),
        (-1, None, "", ValueError),
        (1, -5, "", ValueError),
        (1, None, 5, TypeError),
    ],
)
def test_progress_report_refuses_what_is_not_progress(
    done: object, total: object, message: object, error: type[Exception]
) -> None:
    with pytest.raises(error, match="set_progress"):
        progress_report(done, total, message)  # type: ignore[arg-type]


def test_progress_report_is_json_with_a_timestamp() -> None:
    report = progress_report(2.5, 10, "half")
    assert {k: report[k] for k in ("done", "total", "message")} == {
        "done": 2.5,
        "total": 10,
        "message": "half",
    }
    assert str(report["updated_at"]).startswith(str(timezone.now().year))
