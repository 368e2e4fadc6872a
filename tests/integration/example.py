"""The example project (example/) run as `make demo` and `make serve` run it, on a database of
its own in a temporary file whatever the test database is."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import REPO_ROOT

EXAMPLE_DIR = REPO_ROOT / "example"
DEMO_TIMEOUT = 120.0
STOP_TIMEOUT = 20.0


def example_env(database: Path) -> dict[str, str]:
    """The environment of `make demo`, with the example's database in a temporary file."""
    pythonpath = [str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "exampleproject.settings",
        "TASKMILL_EXAMPLE_DB": str(database),
        "PYTHONPATH": os.pathsep.join(pythonpath),
        "PYTHONUNBUFFERED": "1",
    }


def manage(args: list[str], env: dict[str, str], log_path: Path) -> int:
    """Run `python manage.py *args` in example/, output to log_path; return its exit code.

    On timeout, SIGTERM lets the demo stop its worker; SIGKILL follows if that hangs too.
    `make demo` and `make serve` run these commands in the same way.
    """
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "manage.py", *args],
            cwd=EXAMPLE_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        return process.wait(DEMO_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        output = log_path.read_text()
        pytest.fail(f"manage.py {' '.join(args)} ran over {DEMO_TIMEOUT} s:\n{output}")
