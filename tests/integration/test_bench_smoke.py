"""The bench still runs: `python -m bench --quick` on SQLite ends by itself, exits 0, and
writes every measurement to its JSON. Never asserts on speed."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import REPO_ROOT

DEADLINE = 180
EXPECTED = (
    "enqueue_single",
    "insert_floor",
    "enqueue_vs_insert",
    "enqueue_many",
    "drain_wall",
    "drain_span",
    "pickup_p50",
    "pickup_p95",
    "pickup_max",
    "idle_cpu",
    "idle_rss",
)


@pytest.mark.only_on("sqlite")
def test_bench_quick_run_writes_every_measurement(tmp_path: Path) -> None:
    output = tmp_path / "bench.json"
    command = [sys.executable, "-m", "bench", "--quick", "--databases", "sqlite"]
    completed = subprocess.run(
        [*command, "--output", str(output)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
    )
    assert completed.returncode == 0, f"{completed.stdout}\n{completed.stderr}"
    payload = json.loads(output.read_text())
    sqlite = payload["databases"]["sqlite"]
    assert sqlite["status"] == "ok", sqlite.get("errors")
    missing = [key for key in EXPECTED if key not in sqlite["measurements"]]
    assert not missing, f"measurements missing from the JSON: {missing}"
    assert all(isinstance(sqlite["measurements"][key]["value"], int | float) for key in EXPECTED)
    assert "pickup latency p50" in completed.stdout  # the table was printed
