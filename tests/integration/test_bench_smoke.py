"""The bench still runs: `python -m bench --quick` on SQLite ends by itself, exits 0, and
writes every measurement and the scale points to its JSON; a peer runner (Huey on SQLite,
no server needed) measures the same figures in the peers venv. Never asserts on speed."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import REPO_ROOT

DEADLINE = 300
EXPECTED = (
    "enqueue_single",
    "insert_floor",
    "enqueue_vs_insert",
    "enqueue_many",
    "drain_wall",
    "drain_span",
    "drain_exit",
    "pickup_p50",
    "pickup_p95",
    "pickup_max",
    "after_task_cpu",
    "idle_cpu",
    "idle_rss",
)
PEER_EXPECTED = ("enqueue_single", "drain_wall", "drain_span", "pickup_p50", "idle_cpu")
PEERS_PYTHON = REPO_ROOT / ".venv-peers" / "bin" / "python"
QUICK_WORKLOAD = {
    "repeats": 1,
    "single_enqueues": 20,
    "bulk_enqueues": 50,
    "drain_tasks": 30,
    "concurrency": 2,
    "latency_samples": 5,
    "latency_spacing": 0.02,
    "settle_seconds": 0.2,
    "idle_seconds": 0.5,
}


@pytest.mark.only_on("sqlite")
def test_bench_quick_run_writes_every_measurement(tmp_path: Path) -> None:
    output = tmp_path / "bench.json"
    command = [sys.executable, "-m", "bench", "--quick", "--databases", "sqlite"]
    completed = subprocess.run(
        [*command, "--peers", "none", "--scale", "sqlite", "--output", str(output)],
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
    scale = payload["scale"]["sqlite"]
    assert scale["status"] == "ok", scale.get("errors")
    labels = [point["label"] for point in scale["points"]]
    assert labels == ["0 finished", "2,000 finished", "2,000 + 1,000 churned"]
    assert all(point["claim_p50_ms"] > 0 and point["drain_per_s"] > 0 for point in scale["points"])
    assert "Scale: claim latency" in completed.stdout


@pytest.mark.only_on("sqlite")
def test_a_peer_runner_measures_huey_on_sqlite(tmp_path: Path) -> None:
    if not PEERS_PYTHON.exists():
        pytest.skip(f"{PEERS_PYTHON} is missing (`make .venv-peers` builds it; make test doesn't)")
    output = tmp_path / "huey.json"
    command = [
        str(PEERS_PYTHON), "-m", "bench.peers.run_peer", "huey",
        "--plan", json.dumps(QUICK_WORKLOAD), "--work", str(tmp_path), "--out", str(output),
    ]  # fmt: skip
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(REPO_ROOT),
        "BENCH_HUEY_STORAGE": "sqlite",
        "BENCH_PEER_WORK": str(tmp_path),
        "BENCH_PEER_NAME": "smoke",
    }
    completed = subprocess.run(
        command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert completed.returncode == 0, completed.stderr
    result = json.loads(output.read_text())
    assert result["status"] == "ok", result.get("traceback")
    assert result["versions"]["huey"]
    missing = [key for key in PEER_EXPECTED if key not in result["measurements"]]
    assert not missing, f"figures missing from the peer's JSON: {missing}"
    assert "enqueue_many" not in result["measurements"]  # Huey has no bulk enqueue
