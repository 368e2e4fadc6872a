"""The bench's output: one aligned table (rows: measurements; columns: Taskmill on each
database, then each peer, with a Taskmill / peer ratio line under each figure the peers
have) and JSON."""

import json
from pathlib import Path
from typing import Any, Final

from .catalogue import MEASUREMENTS, PEER_KEYS, describe
from .peers.run import COMPARED_WITH
from .plan import Plan

LABEL_WIDTH: Final = 42
UNIT_WIDTH: Final = 8
COLUMN_WIDTH: Final = 13


def _cell(column: dict[str, Any], key: str, digits: int) -> str:
    status = column["status"]
    if status in ("skipped", "not installed", "failed") and not column.get("measurements"):
        return "not inst." if status == "not installed" else str(status)
    found = column.get("measurements", {}).get(key)
    if found is None:
        return "n/a" if column.get("peer") else "error"
    return f"{found['value']:,.{digits}f}"


def _ratio(databases: dict[str, Any], peer_name: str, peer: dict[str, Any], key: str) -> str:
    mine = databases.get(COMPARED_WITH[peer_name], {}).get("measurements", {}).get(key)
    theirs = peer.get("measurements", {}).get(key)
    if mine is None or theirs is None or not theirs["value"]:
        return ""
    return f"{mine['value'] / theirs['value']:,.2f}x"


def render_table(payload: dict[str, Any], plan: Plan) -> str:
    """Return the table, with the command and the workloads that produced it."""
    databases: dict[str, dict[str, Any]] = payload["databases"]
    peers: dict[str, dict[str, Any]] = payload.get("peers", {})
    columns = {**databases, **{name: {**peer, "peer": True} for name, peer in peers.items()}}
    host = payload["host"]
    lines = [
        f"$ {payload['command']}",
        f"Taskmill bench, {payload['started_at']}: {host['cpus']} CPUs, Python {host['python']}, "
        f"Django {host['django']}; took {payload['duration_s']:.0f} s",
        "",
        "".ljust(LABEL_WIDTH + UNIT_WIDTH)
        + "".join(("Taskmill" if i == 0 else "").rjust(COLUMN_WIDTH) for i in range(len(databases)))
        + "".join(("peers" if i == 0 else "").rjust(COLUMN_WIDTH) for i in range(len(peers))),
        "measurement".ljust(LABEL_WIDTH)
        + "unit".ljust(UNIT_WIDTH)
        + "".join(name.rjust(COLUMN_WIDTH) for name in columns),
    ]
    for measurement in MEASUREMENTS:
        cells = (_cell(c, measurement.key, measurement.digits) for c in columns.values())
        lines.append(
            measurement.label.ljust(LABEL_WIDTH)
            + measurement.unit.ljust(UNIT_WIDTH)
            + "".join(cell.rjust(COLUMN_WIDTH) for cell in cells)
        )
        ratios = [_ratio(databases, n, p, measurement.key) for n, p in peers.items()]
        if measurement.key in PEER_KEYS and any(ratios):
            lines.append(
                "  Taskmill / peer".ljust(LABEL_WIDTH + UNIT_WIDTH)
                + "".rjust(COLUMN_WIDTH * len(databases))
                + "".join(ratio.rjust(COLUMN_WIDTH) for ratio in ratios)
            )
    lines.append("")
    for key, text in describe(plan).items():
        label = next(m.label for m in MEASUREMENTS if m.key == key)
        lines.append(f"  {label}: {text}")
    if peers:
        lines.append(
            "  Taskmill / peer: Taskmill on "
            + ", ".join(f"{COMPARED_WITH[name]} for {name}" for name in peers)
            + "; above 1 is Taskmill faster for a rate, slower for a latency or a cost"
        )
    lines.append("")
    lines.extend(_statuses(databases, peers))
    return "\n".join(lines)


def _statuses(databases: dict[str, Any], peers: dict[str, Any]) -> list[str]:
    lines = []
    for name, database in databases.items():
        if database["status"] == "skipped":
            lines.append(f"  {name}: skipped: {database['reason']}")
        else:
            lines.append(
                f"  {name}: {database['server_version']}, {database['status']} "
                f"in {database['duration_s']:.0f} s"
            )
        for step in database.get("errors", {}):
            lines.append(f"    {step} failed (traceback in the JSON)")
    for name, peer in peers.items():
        versions = ", ".join(f"{k} {v}" for k, v in peer.get("versions", {}).items())
        if peer["status"] == "ok":
            lines.append(f"  {name}: {versions}; {peer.get('settings', '')}")
        else:
            lines.append(f"  {name}: {peer['status']}: {peer.get('reason', '?')}")
    return lines


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")


def render_scale_table(payload: dict[str, Any]) -> str:
    """Return the scale table: per database, each step's claim latency and drain rate, with
    the ratio to the empty table's (flat = near 1.00)."""
    lines = [
        "Scale: claim latency and drain rate as finished rows fill the table (bench.scale)",
        "",
        f"{'database':<12}{'step':<30}{'rows':>11}{'claim p50':>11}{'claim p95':>11}"
        f"{'p50 vs 0':>10}{'drain/s':>10}{'vs 0':>7}{'dead rows':>11}",
    ]
    for name, database in payload["scale"].items():
        points = database.get("points")
        if not points:
            reason = database.get("reason") or "; ".join(database.get("errors", {})) or "?"
            lines.append(f"{name:<12}{database['status']}: {reason}")
            continue
        first = points[0]
        for point in points:
            dead = point.get("dead_rows")
            lines.append(
                f"{name:<12}{point['label']:<30}{point['table_rows']:>11,}"
                f"{point['claim_p50_ms']:>9.2f}ms{point['claim_p95_ms']:>9.2f}ms"
                f"{point['claim_p50_ms'] / first['claim_p50_ms']:>9.2f}x"
                f"{point['drain_per_s']:>10,.0f}"
                f"{point['drain_per_s'] / first['drain_per_s']:>6.2f}x"
                f"{'' if dead is None else f'{dead:,}':>11}"
            )
    plot = payload.get("scale_plot", {})
    lines.append("")
    lines.append(f"  plot: {plot.get('path') or 'not written: ' + plot.get('error', '?')}")
    return "\n".join(lines)
