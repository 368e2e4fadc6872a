"""Purpose-named tasks the tests enqueue; each does exactly what its name says."""

import asyncio
import ctypes
import logging
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from django.tasks import TaskContext

from taskmill import Retry, task
from taskmill.context import TaskmillContext

from .models import Article, LedgerEntry


class TransientError(Exception):
    """An error a task may be retried for."""


def delay_by_attempt(attempt: int) -> float:
    return 0.01 * attempt


def key_of_first_argument(*args: Any, **kwargs: Any) -> str:
    return str(args[0]) if args else ""


@task
def noop() -> None:
    return None


@task
def add(a: int, b: int) -> int:
    return a + b


@task
def echo(*args: Any, **kwargs: Any) -> dict[str, Any]:
    return {"args": list(args), "kwargs": kwargs}


@task(queue_name="reports", priority=10)
def build_report(report_id: int) -> dict[str, int]:
    return {"report_id": report_id}


@task(
    max_attempts=3,
    retry_delay=0.5,
    retry_max_delay=10,
    retry_on=(TransientError,),
    timeout=30,
    result_ttl=3600,
)
def configured(value: int) -> int:
    return value


@task(retry_delay=delay_by_attempt, unique=key_of_first_argument)
def with_callables(value: int) -> int:
    return value


@task(unique=True)
def unique_noop(value: int) -> int:
    return value


@task
def fail_value_error(message: str = "boom") -> None:
    raise ValueError(message)


@task
def title_of(article: Article) -> str:
    return article.title


@task(takes_context=True)
def attempt_number(context: TaskContext) -> int:  # type: ignore[type-arg]  # generic only in stubs
    return context.attempt


@task
async def async_add(a: int, b: int) -> int:
    await asyncio.sleep(0)
    return a + b


@task
def append_to_ledger(key: str) -> str:
    LedgerEntry.objects.create(result_id="", key=key, pid=os.getpid())
    return key


@task
def sleep_for(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


GATE_DEADLINE = 120.0


@task
def block_until_released(gate: str) -> str:
    """Mark `gate`/started, then wait until the test creates `gate`/release."""
    gate_dir = Path(gate)
    (gate_dir / f"started-{os.getpid()}").touch()
    deadline = time.monotonic() + GATE_DEADLINE
    while not (gate_dir / "release").exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gate {gate} was never released")
        time.sleep(0.01)
    return "released"


@task(timeout=1)
def hang_with_timeout(gate: str) -> None:
    """Mark the gate, then hang far past the 1 s timeout."""
    (Path(gate) / f"started-{os.getpid()}").touch()
    time.sleep(600)


@task
def exit_hard(code: int = 3) -> None:
    os._exit(code)


@task
def segfault() -> None:
    ctypes.string_at(0)


@task(max_attempts=3, retry_delay=0)
def fail_twice_then_succeed() -> int:
    attempts = LedgerEntry.objects.filter(key="fail_twice").count() + 1
    LedgerEntry.objects.create(result_id="", key="fail_twice", pid=os.getpid())
    if attempts < 3:
        raise TransientError(f"attempt {attempts} fails")
    return attempts


@task(max_attempts=2)
def raise_retry(delay: float) -> None:
    raise Retry(delay=delay, reason="asked to retry")


@task(max_attempts=3, retry_delay=0, retry_on=(TransientError,))
def fail_permanently() -> None:
    raise KeyError("not retried: KeyError is not in retry_on")


@task
def ledger_task(key: str) -> str:
    """Append one ledger row per execution, in its own transaction: proves exactly-once."""
    LedgerEntry.objects.create(result_id=key, key=key, pid=os.getpid())
    return key


@task(takes_context=True)
def record_execution(context: TaskmillContext, gate: str = "") -> int:
    """Wait at `gate` if one is given, then append a ledger row naming this attempt."""
    if gate:
        block_until_released.call(gate)
    LedgerEntry.objects.create(
        result_id=context.task_result.id, key="", pid=os.getpid(), attempt=context.attempt
    )
    return context.attempt


@task(max_attempts=25, retry_delay=0, takes_context=True)
def ledger_attempt(context: TaskmillContext, key: str, work_seconds: float) -> str:
    """Work a little, append a ledger row naming this attempt, work a little more.

    For kill storms: the work on both sides of the row lets a kill land before the side effect
    (an attempt with no row) or after it (a row whose attempt never recorded an outcome); the
    attempts are enough that kills don't exhaust them.
    """
    time.sleep(work_seconds / 2)
    LedgerEntry.objects.create(
        result_id=context.task_result.id, key=key, pid=os.getpid(), attempt=context.attempt
    )
    time.sleep(work_seconds / 2)
    return key


def not_a_task() -> None:
    """A plain function: rows naming it must never run."""


@task
def exhaust_memory() -> int:
    """Allocate past a 512 MB address-space limit set for this call only."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (512 * 1024 * 1024, hard))
    try:
        hoard = [bytearray(64 * 1024 * 1024) for _ in range(64)]
        return len(hoard)
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


# -- Output and progress ----------------------------------------------------------------------

task_logger = logging.getLogger(__name__)


@task
def chatty(gate: str = "") -> str:
    """Write to every captured stream: print, stderr, logging, a subprocess; then maybe wait."""
    print("hello from stdout")
    print("a warning on stderr", file=sys.stderr)
    task_logger.info("an info record")
    task_logger.debug("a debug record, below the default level")
    subprocess.run(["echo", "from a subprocess"], check=True)  # noqa: S607 - echo from PATH
    print("no newline at the end", end="")
    if gate:
        block_until_released.call(gate)
    return "chatted"


@task
def write_everywhere(tag: str) -> str:
    """Write one line naming `tag` on every captured stream: stdout, stderr, logging, and
    the stdout of a subprocess."""
    print(f"out {tag}")
    print(f"err {tag}", file=sys.stderr)
    task_logger.info("log %s", tag)
    subprocess.run(["echo", f"sub {tag}"], check=True)  # noqa: S607 - echo from PATH
    return tag


@task(log_level="DEBUG")
def chatty_debug() -> None:
    task_logger.debug("a debug record, captured at DEBUG")


@task
def flood(megabytes: int) -> int:
    """Write a burst of output far over the log cap, as fast as the pipe takes it."""
    line = b"x" * 1023 + b"\n"
    block = line * 1024
    for _ in range(megabytes):
        os.write(1, block)
    return megabytes


@task(timeout=2)
def print_then_hang(gate: str) -> None:
    """Print a line, mark the gate, then hang past the timeout."""
    print("written before the kill", flush=True)
    (Path(gate) / f"started-{os.getpid()}").touch()
    time.sleep(600)


@task(takes_context=True)
def count_with_progress(context: TaskmillContext, total: int, gate: str = "") -> int:
    """Report progress for every item; after half of them, wait at the gate if one is given."""
    for done in range(1, total + 1):
        context.set_progress(done, total, message=f"item {done}")
        if gate and done == total // 2:
            block_until_released.call(gate)
    context.log.info("counted %s items", total)
    return total


@task(takes_context=True)
def stop_when_cancelled(context: TaskmillContext, gate: str) -> str:
    """Work in steps until told to stop; the cooperative way of being cancelled."""
    (Path(gate) / f"started-{os.getpid()}").touch()
    deadline = time.monotonic() + GATE_DEADLINE
    steps = 0
    while not context.is_cancelled():
        if time.monotonic() > deadline:
            raise TimeoutError("never cancelled")
        steps += 1
        context.set_progress(steps, message="working")
        time.sleep(0.01)
    print(f"stopped cleanly after {steps} steps", flush=True)
    return f"stopped after {steps} steps"


@task(max_attempts=2, retry_delay=0, takes_context=True)
def print_and_fail_once(context: TaskmillContext) -> int:
    print(f"attempt {context.attempt}")
    if context.attempt == 1:
        raise TransientError("first attempt fails")
    return context.attempt


# -- The worked example of docs/how-to/long-tasks.md, with a gate at half-way ------------------


@task
def prepare_drafts(count: int) -> int:
    """The preparation a batch job depends on: the rows it will work through."""
    Article.objects.bulk_create(Article(title=f"draft {n}") for n in range(count))
    return count


@task(takes_context=True, timeout=120)
def publish_drafts(context: TaskmillContext, gate: str) -> int:
    """Publish every draft, logging and reporting progress; stop cleanly when cancelled."""
    drafts = list(Article.objects.filter(title__startswith="draft").order_by("pk"))
    for done, article in enumerate(drafts, start=1):
        if context.is_cancelled():
            context.log.warning("cancelled after %s of %s", done - 1, len(drafts))
            return done - 1
        article.title = article.title.replace("draft", "published")
        article.save(update_fields=["title"])
        context.log.info("published article %s", article.pk)
        context.set_progress(done, len(drafts), message=article.title)
        if done == len(drafts) // 2:
            (Path(gate) / f"started-{os.getpid()}").touch()
            _wait_for_cancel(context)
    return len(drafts)


def _wait_for_cancel(context: TaskmillContext) -> None:
    deadline = time.monotonic() + GATE_DEADLINE
    while not context.is_cancelled():
        if time.monotonic() > deadline:
            raise TimeoutError("never cancelled")
        time.sleep(0.01)


@task(takes_context=True)
def write_until_released(context: TaskmillContext, gate: str) -> int:
    """Print a numbered line (with markup in it) and report progress every 0.1 s until the test
    creates `gate`/release; for watching a task's page follow it."""
    gate_dir = Path(gate)
    (gate_dir / f"started-{os.getpid()}").touch()
    deadline = time.monotonic() + GATE_DEADLINE
    line = 0
    while not (gate_dir / "release").exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gate {gate} was never released")
        line += 1
        print(f"line {line} <b>not bold</b>", flush=True)
        context.set_progress(min(line, 99), 100, message=f"at line {line}")
        time.sleep(0.1)
    return line
