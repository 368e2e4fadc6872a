"""The bench's table: peers as columns with a Taskmill / peer ratio line against the right
Taskmill database, failed or missing peers shown with their reason, and the scale table."""

from typing import Any

from bench.plan import QUICK_PLAN
from bench.report import render_scale_table, render_table


def figure(value: float, unit: str = "tasks/s") -> dict[str, Any]:
    return {"value": value, "unit": unit, "samples": [value]}


def payload(peers: dict[str, Any]) -> dict[str, Any]:
    return {
        "command": "python -m bench",
        "started_at": "2026-12-02 20:00 UTC",
        "duration_s": 60.0,
        "host": {"cpus": 2, "python": "3.12.1", "django": "6.1"},
        "databases": {
            "sqlite": {
                "status": "ok",
                "server_version": "SQLite 3.40",
                "duration_s": 10.0,
                "measurements": {"drain_span": figure(400.0)},
            },
            "postgresql": {
                "status": "ok",
                "server_version": "PostgreSQL 15",
                "duration_s": 10.0,
                "measurements": {"drain_span": figure(300.0)},
            },
        },
        "peers": peers,
    }


def line_after(table: str, label: str) -> tuple[str, str]:
    lines = table.splitlines()
    index = next(i for i, line in enumerate(lines) if line.startswith(label))
    return lines[index], lines[index + 1]


def test_ratio_line__divides_by_the_taskmill_database_each_peer_is_compared_with() -> None:
    peers = {
        "huey-sqlite": {"status": "ok", "measurements": {"drain_span": figure(200.0)}},
        "celery-redis": {"status": "ok", "measurements": {"drain_span": figure(600.0)}},
    }

    table = render_table(payload(peers), QUICK_PLAN)

    figures, ratios = line_after(table, "drain, first start to last finish")
    assert figures.split()[-4:] == ["400", "300", "200", "600"]
    assert ratios.split() == ["Taskmill", "/", "peer", "2.00x", "0.50x"]  # 400/200, 300/600


def test_a_peer_that_failed_or_is_missing__is_a_column_with_its_reason() -> None:
    peers = {
        "huey-redis": {"status": "failed", "reason": "ConnectionError: Redis refused"},
        "pgqueuer-pg": {"status": "not installed", "reason": "run `make .venv-peers`"},
    }

    table = render_table(payload(peers), QUICK_PLAN)

    figures, following = line_after(table, "drain, first start to last finish")
    assert figures.split()[-3:] == ["failed", "not", "inst."]
    assert not following.startswith("  Taskmill / peer")  # no ratio to show
    assert "huey-redis: failed: ConnectionError: Redis refused" in table
    assert "pgqueuer-pg: not installed: run `make .venv-peers`" in table


def test_scale_table__shows_each_step_against_the_empty_table() -> None:
    points = [
        {"label": "0 finished", "table_rows": 20, "claim_p50_ms": 1.0, "claim_p95_ms": 2.0,
         "drain_per_s": 100.0, "dead_rows": 0},
        {"label": "1,000 finished", "table_rows": 1020, "claim_p50_ms": 1.5, "claim_p95_ms": 3.0,
         "drain_per_s": 50.0, "dead_rows": 1200},
    ]  # fmt: skip
    data = {
        "scale": {
            "postgresql": {"status": "ok", "points": points},
            "sqlite": {"status": "failed", "errors": {"scale": "Traceback ..."}},
        },
        "scale_plot": {"error": "matplotlib is missing"},
    }

    table = render_scale_table(data)

    row = next(line for line in table.splitlines() if "1,000 finished" in line)
    assert row.split() == ["postgresql", "1,000", "finished", "1,020", "1.50ms", "3.00ms",
                           "1.50x", "50", "0.50x", "1,200"]  # fmt: skip
    assert "sqlite      failed: scale" in table
    assert "plot: not written: matplotlib is missing" in table
