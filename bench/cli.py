"""`python -m bench`: run the suite on each database in turn, print the table, write JSON.

Each database gets a fresh database (dropped at the end) and a process of its own running
bench.suite; workers it leaves behind, if it crashes or overruns, are killed here.
"""

import argparse
import json
import os
import platform
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, Final

import django

from .databases import VENDORS, BenchDatabase, DatabaseUnavailable, fresh_database
from .peers.run import PEER_NAMES, measure_peers
from .plan import DEFAULT_PLAN, QUICK_PLAN
from .processes import PID_DIR_VARIABLE, REPO_ROOT, kill_strays
from .report import render_scale_table, render_table, write_json
from .scale import DEFAULT_SCALE, QUICK_SCALE
from .scale_plot import write_scale_plot

DEFAULT_OUTPUT: Final = REPO_ROOT / "bench" / "results" / "latest.json"
# Per database, by module and --quick: the default suite takes about a minute and a half on
# each; the default scale run about five minutes on PostgreSQL (a million rows).
DEADLINES: Final = {
    "bench.suite": {False: 300.0, True: 120.0},
    "bench.scale": {False: 1200.0, True: 120.0},
}
SUITE_STOP_TIMEOUT: Final = 30.0


def _database_list(value: str) -> list[str]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in VENDORS]
    if not names or unknown:
        raise argparse.ArgumentTypeError(
            f"{value!r}: give a comma-separated list of {', '.join(VENDORS)}"
        )
    return list(dict.fromkeys(names))


def _scale_list(value: str) -> list[str]:
    return [] if value == "none" else _database_list(value)


def _peer_list(value: str) -> list[str]:
    if value == "none":
        return []
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in PEER_NAMES]
    if not names or unknown:
        raise argparse.ArgumentTypeError(
            f"{value!r}: give none or a comma-separated list of {', '.join(PEER_NAMES)}"
        )
    return list(dict.fromkeys(names))


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Measure Taskmill: enqueue rates, drain throughput, pickup latency and "
        "idle cost, on fresh databases. Reports medians; never asserts on speed.",
    )
    parser.add_argument("--quick", action="store_true", help="small workloads, one run each")
    parser.add_argument(
        "--databases",
        type=_database_list,
        default=list(VENDORS),
        help=f"comma-separated (default: {','.join(VENDORS)}); an unreachable server is skipped",
    )
    parser.add_argument(
        "--peers",
        type=_peer_list,
        default=list(PEER_NAMES),
        help=f"comma-separated peers to measure, or none (default: {','.join(PEER_NAMES)}); "
        "they run in .venv-peers",
    )
    parser.add_argument(
        "--scale",
        type=_scale_list,
        default=["sqlite", "postgresql"],
        help="comma-separated databases to run the scale measurement on, or none "
        "(default: sqlite,postgresql)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help="where to write the JSON (default: bench/results/latest.json)",
    )
    return parser.parse_args(argv)


def _say(message: str) -> None:
    sys.stderr.write(f"{message}\n")
    sys.stderr.flush()


def _run_suite(
    database: BenchDatabase, *, quick: bool, work: Path, module: str = "bench.suite"
) -> dict[str, Any]:
    """Run bench.suite (or bench.scale) on the database in a child process; return its result."""
    out = work / "result.json"
    pid_dir = work / "pids"
    pid_dir.mkdir()
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="bench.settings",
        BENCH_DB_VENDOR=database.vendor,
        BENCH_DB_NAME=database.name,
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")])),
    )
    env[PID_DIR_VARIABLE] = str(pid_dir)
    command = [sys.executable, "-m", module, "--out", str(out)]
    if quick:
        command.append("--quick")
    deadline = DEADLINES[module][quick]
    suite = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL)  # noqa: S603 - our own interpreter and module
    problem = None
    try:
        code = suite.wait(deadline)
        if code != 0:
            problem = f"{module} exited {code}"
    except subprocess.TimeoutExpired:
        problem = f"{module} overran its {deadline:g} s deadline and was stopped"
    finally:
        _stop(suite)
        strays = kill_strays(pid_dir)
        if strays:
            _say(f"[{database.vendor}] killed leftover worker(s) {strays}")
    result: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
    if problem is not None:
        result.setdefault("errors", {})[module.removeprefix("bench.")] = problem
    return result


def _stop(process: "subprocess.Popen[bytes]") -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)  # it unwinds and stops its workers
    try:
        process.wait(SUITE_STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _measure(vendor: str, *, quick: bool, module: str = "bench.suite") -> dict[str, Any]:
    started = time.monotonic()
    try:
        with (
            fresh_database(vendor) as database,
            tempfile.TemporaryDirectory(prefix="taskmill-bench-") as work,
        ):
            _say(f"[{vendor}] {database.server_version}, database {database.name}")
            result = _run_suite(database, quick=quick, work=Path(work), module=module)
    except DatabaseUnavailable as error:
        _say(f"[{vendor}] skipped: {error}")
        return {"status": "skipped", "reason": str(error)}
    except Exception as error:  # creating or dropping the database failed: report, go on
        _say(f"[{vendor}] failed: {error}")
        return {
            "status": "failed",
            "server_version": "?",
            "duration_s": round(time.monotonic() - started, 1),
            "errors": {"database": "".join(traceback.format_exception(error))},
        }
    return {
        "status": "failed" if result.get("errors") else "ok",
        "server_version": database.server_version,
        "duration_s": round(time.monotonic() - started, 1),
        **result,
    }


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    # Unwind, so the suite is stopped and its database dropped on the way out.
    raise SystemExit(128 + signum)


def main(argv: list[str]) -> int:
    """Run the bench; return 0 if every database reached was measured without error."""
    options = _parse(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    plan = QUICK_PLAN if options.quick else DEFAULT_PLAN
    started_at = datetime.now(UTC)
    started = time.monotonic()
    databases = {vendor: _measure(vendor, quick=options.quick) for vendor in options.databases}
    peers = measure_peers(plan, quick=options.quick, names=options.peers)
    scale = {
        vendor: _measure(vendor, quick=options.quick, module="bench.scale")
        for vendor in options.scale
    }
    scale_plot = write_scale_plot(scale, options.output.with_name("scale.png"))
    payload = {
        "command": shlex.join(["python", "-m", "bench", *argv]),
        "started_at": started_at.strftime("%Y-%m-%d %H:%M UTC"),
        "duration_s": round(time.monotonic() - started, 1),
        "quick": options.quick,
        "plan": plan.as_json(),
        "host": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "django": django.get_version(),
            "platform": platform.platform(),
        },
        "databases": databases,
        "peers": peers,
        "scale_plan": (QUICK_SCALE if options.quick else DEFAULT_SCALE).as_json(),
        "scale": scale,
        "scale_plot": scale_plot,
    }
    write_json(options.output, payload)
    sys.stdout.write(render_table(payload, plan) + "\n\n")
    if scale:
        sys.stdout.write(render_scale_table(payload) + "\n\n")
    sys.stdout.write(f"JSON: {options.output}\n")
    # A peer that fails is reported in the table, never a reason to fail Taskmill's bench.
    measured = [db for db in databases.values() if db["status"] != "skipped"]
    return 0 if measured and all(db["status"] == "ok" for db in measured) else 1
