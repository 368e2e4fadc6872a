"""The bench's output: one aligned table (rows: measurements, columns: databases) and JSON."""

import json
from pathlib import Path
from typing import Any

from .catalogue import MEASUREMENTS, describe
from .plan import Plan

LABEL_WIDTH = 44
UNIT_WIDTH = 8
COLUMN_WIDTH = 12


def _cell(database: dict[str, Any], key: str, digits: int) -> str:
    if database["status"] == "skipped":
        return "skipped"
    found = database.get("measurements", {}).get(key)
    if found is None:
        return "error"
    return f"{found['value']:,.{digits}f}"


def render_table(payload: dict[str, Any], plan: Plan) -> str:
    """Return the table, with the command and the workloads that produced it."""
    databases: dict[str, dict[str, Any]] = payload["databases"]
    host = payload["host"]
    lines = [
        f"$ {payload['command']}",
        f"Taskmill bench, {payload['started_at']}: {host['cpus']} CPUs, Python {host['python']}, "
        f"Django {host['django']}; took {payload['duration_s']:.0f} s",
        "",
        "measurement".ljust(LABEL_WIDTH)
        + "unit".ljust(UNIT_WIDTH)
        + "".join(name.rjust(COLUMN_WIDTH) for name in databases),
    ]
    for measurement in MEASUREMENTS:
        cells = (_cell(db, measurement.key, measurement.digits) for db in databases.values())
        lines.append(
            measurement.label.ljust(LABEL_WIDTH)
            + measurement.unit.ljust(UNIT_WIDTH)
            + "".join(cell.rjust(COLUMN_WIDTH) for cell in cells)
        )
    lines.append("")
    for key, text in describe(plan).items():
        label = next(m.label for m in MEASUREMENTS if m.key == key)
        lines.append(f"  {label}: {text}")
    lines.append("")
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
    return "\n".join(lines)


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")
