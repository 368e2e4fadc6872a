"""One database's measurements, run in a process of its own (Django settings are per process).

`python -m bench.suite --out FILE [--quick]`, with DJANGO_SETTINGS_MODULE=bench.settings and
BENCH_DB_VENDOR / BENCH_DB_NAME naming a fresh, empty database. `python -m bench` starts it.
"""

import argparse
import json
import os
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import django

from .catalogue import Figure
from .plan import DEFAULT_PLAN, QUICK_PLAN, Plan

type Step = Callable[[Plan, Path], tuple[dict[str, Figure], dict[str, Any]]]


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    # Unwind, so the `finally` blocks stop the workers this process started.
    raise SystemExit(128 + signum)


def _say(vendor: str, message: str) -> None:
    sys.stderr.write(f"[{vendor}] {message}\n")
    sys.stderr.flush()


def _steps() -> list[tuple[str, Step]]:
    # Imported here: these modules need Django's app registry, ready only after setup().
    from .enqueue import measure_enqueue_many, measure_single_enqueue
    from .worker_runs import measure_drain, measure_idle_worker

    return [
        ("single enqueue vs INSERT", lambda plan, _: (measure_single_enqueue(plan), {})),
        ("enqueue_many", lambda plan, _: (measure_enqueue_many(plan), {})),
        ("drain", lambda plan, logs: (measure_drain(plan, logs), {})),
        ("pickup latency and idle cost", measure_idle_worker),
    ]


def run(plan: Plan, vendor: str) -> dict[str, Any]:
    """Migrate the database, run every step, and return what they measured.

    A step that fails is reported in "errors"; the others still run.
    """
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    measurements: dict[str, Figure] = {}
    details: dict[str, Any] = {}
    errors: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="taskmill-bench-logs-") as log_dir:
        for name, step in _steps():
            started = time.monotonic()
            _say(vendor, f"{name} ...")
            try:
                figures, extra = step(plan, Path(log_dir))
            except Exception as error:
                errors[name] = "".join(traceback.format_exception(error))
                _say(vendor, f"{name} FAILED: {error}")
                continue
            measurements.update(figures)
            details.update(extra)
            _say(vendor, f"{name} done in {time.monotonic() - started:.1f} s")
    return {"measurements": measurements, "details": details, "errors": errors}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.suite")
    parser.add_argument("--out", type=Path, required=True, help="write the JSON result here")
    parser.add_argument("--quick", action="store_true", help="small workloads (smoke run)")
    options = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    django.setup()
    vendor = os.environ.get("BENCH_DB_VENDOR", "sqlite")
    started = time.monotonic()
    result = run(QUICK_PLAN if options.quick else DEFAULT_PLAN, vendor)
    result["duration_s"] = round(time.monotonic() - started, 1)
    options.out.write_text(json.dumps(result, indent=2))
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
