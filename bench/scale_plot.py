"""The scale plot: claim latency and drain rate against the number of rows in the table.

Drawn with matplotlib, which lives in the peers venv (.venv-peers), not in Taskmill's:
write_scale_plot() runs this module there as `python -m bench.scale_plot DATA.json OUT.png`.
"""

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Final

REPO_ROOT: Final = Path(__file__).resolve().parent.parent
PEERS_PYTHON: Final = REPO_ROOT / ".venv-peers" / "bin" / "python"
PLOT_TIMEOUT: Final = 120.0


def write_scale_plot(scale: dict[str, dict[str, Any]], output: Path) -> dict[str, str]:
    """Draw the scale results to `output` (PNG); return {"path": ...} or {"error": why}."""
    measured = {name: db["points"] for name, db in scale.items() if db.get("points")}
    if not measured:
        return {"error": "no scale measurements to plot"}
    if not PEERS_PYTHON.exists():
        return {"error": "matplotlib is in .venv-peers, which is missing: run make .venv-peers"}
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", suffix=".json") as data:
        json.dump(measured, data)
        data.flush()
        completed = subprocess.run(  # noqa: S603 - this module, in the peers venv
            [str(PEERS_PYTHON), "-m", "bench.scale_plot", data.name, str(output)],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=PLOT_TIMEOUT,
            check=False,
        )
    if completed.returncode != 0:
        return {"error": f"plotting failed: {completed.stderr.strip()[-300:]}"}
    return {"path": str(output)}


def _plot(measured: dict[str, list[dict[str, Any]]], output: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display: write a file
    import matplotlib.pyplot as plt

    figure, (claim, drain) = plt.subplots(1, 2, figsize=(12, 4.5))
    # Against the table's size (log scale), so each database's steps sit where they belong;
    # the churned point, with more rows than the last fill, is named on the curve.
    for name, points in measured.items():
        rows = [point["table_rows"] for point in points]
        line = claim.plot(
            rows, [p["claim_p50_ms"] for p in points], marker="o", label=f"{name} p50"
        )
        claim.plot(
            rows,
            [p["claim_p95_ms"] for p in points],
            marker="x",
            linestyle="--",
            color=line[0].get_color(),
            label=f"{name} p95",
        )
        drain.plot(rows, [p["drain_per_s"] for p in points], marker="o", label=name)
        churned = [p for p in points if "churned" in p["label"]]
        for point in churned:
            claim.annotate("after churn", (point["table_rows"], point["claim_p50_ms"]), fontsize=7)
            drain.annotate("after churn", (point["table_rows"], point["drain_per_s"]), fontsize=7)
    claim.set_title("claim of one ready task")
    claim.set_ylabel("ms")
    claim.set_ylim(bottom=0)
    drain.set_title("drain, --concurrency 2, first start to last finish")
    drain.set_ylabel("tasks/s")
    drain.set_ylim(bottom=0)
    for axes in (claim, drain):
        axes.set_xlabel("rows in the task table")
        axes.set_xscale("log")
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8)
    figure.suptitle("Taskmill: claim latency and drain rate as the table grows")
    figure.tight_layout()
    figure.savefig(output, dpi=100)


if __name__ == "__main__":
    _plot(json.loads(Path(sys.argv[1]).read_text()), Path(sys.argv[2]))
