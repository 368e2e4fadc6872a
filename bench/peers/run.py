"""Run the peer runners from Taskmill's venv: each in the peers venv (.venv-peers), as a
subprocess with a deadline, and collect their JSON. A peer that isn't installed, can't reach
its server or fails is reported with the reason; the others still run."""

import contextlib
import json
import os
import secrets
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from ..databases import SERVERS, DatabaseUnavailable, fresh_database
from ..plan import Plan
from ..processes import REPO_ROOT

PEERS_PYTHON: Final = REPO_ROOT / ".venv-peers" / "bin" / "python"
PEER_DEADLINE: Final = 300.0
QUICK_PEER_DEADLINE: Final = 120.0
STOP_TIMEOUT: Final = 30.0


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerSetup:
    name: str  # the column in the table
    runner: str  # bench.peers.run_peer's PEER argument
    compare_with: str  # the Taskmill database its ratio line divides by
    env: dict[str, str] = field(default_factory=dict)
    needs_postgres: bool = False


# Each peer is compared with Taskmill on the store a project would choose it over: Huey on
# SQLite with Taskmill on SQLite; the Redis and PostgreSQL peers with Taskmill on PostgreSQL.
PEERS: Final = (
    PeerSetup(
        name="huey-sqlite",
        runner="huey",
        compare_with="sqlite",
        env={"BENCH_HUEY_STORAGE": "sqlite"},
    ),
    PeerSetup(
        name="huey-redis",
        runner="huey",
        compare_with="postgresql",
        env={"BENCH_HUEY_STORAGE": "redis"},
    ),
    PeerSetup(name="celery-redis", runner="celery", compare_with="postgresql"),
    PeerSetup(
        name="pgqueuer-pg", runner="pgqueuer", compare_with="postgresql", needs_postgres=True
    ),
)
COMPARED_WITH: Final = {peer.name: peer.compare_with for peer in PEERS}
PEER_NAMES: Final = tuple(peer.name for peer in PEERS)


def peers_python_problem() -> str | None:
    """Say why the peers venv can't be used, or None if it can."""
    if not PEERS_PYTHON.exists():
        return f"{PEERS_PYTHON.relative_to(REPO_ROOT)} not found: run `make .venv-peers`"
    if not (PEERS_PYTHON.parent.parent / ".installed").exists():
        return "the peers venv is incomplete (its install failed): run `make .venv-peers`"
    return None


def measure_peers(plan: Plan, *, quick: bool, names: list[str]) -> dict[str, dict[str, Any]]:
    """Measure each named peer in turn; return {name: result}, failures included."""
    problem = peers_python_problem()
    results: dict[str, dict[str, Any]] = {}
    for peer in PEERS:
        if peer.name not in names:
            continue
        if problem is not None:
            results[peer.name] = {"status": "not installed", "reason": problem}
            continue
        results[peer.name] = _measure_one(peer, plan, quick=quick)
    return results


def _measure_one(peer: PeerSetup, plan: Plan, *, quick: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"taskmill-bench-{peer.name}-") as folder:
        work = Path(folder)
        try:
            with _peer_env(peer, work) as env:
                return _run_runner(peer, plan, env, work, quick=quick)
        except DatabaseUnavailable as error:
            return {"status": "failed", "reason": str(error)}
        except Exception as error:  # e.g. the server restarted under us: report, go on
            return {"status": "failed", "reason": f"{type(error).__name__}: {error}".strip()}


@contextlib.contextmanager
def _peer_env(peer: PeerSetup, work: Path) -> Iterator[dict[str, str]]:
    env = dict(os.environ)
    env.pop("VIRTUAL_ENV", None)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.update(peer.env)
    env["BENCH_PEER_WORK"] = str(work)
    # Names of the run's own (a Redis queue, a Huey name), so a shared server is left as found.
    env["BENCH_PEER_NAME"] = f"taskmill-bench-{secrets.token_hex(4)}"
    env["PYTHONPATH"] = str(REPO_ROOT)
    if not peer.needs_postgres:
        yield env
        return
    with fresh_database("postgresql") as database:
        server = SERVERS["postgresql"]
        env["BENCH_PEER_PG_DSN"] = (
            f"postgresql://{server['user']}@{server['host']}:{server['port']}/{database.name}"
        )
        yield env


def _run_runner(
    peer: PeerSetup, plan: Plan, env: dict[str, str], work: Path, *, quick: bool
) -> dict[str, Any]:
    out = work / "result.json"
    command = [
        str(PEERS_PYTHON), "-m", "bench.peers.run_peer", peer.runner,
        "--plan", json.dumps(plan.as_json()), "--work", str(work), "--out", str(out),
    ]  # fmt: skip
    deadline = QUICK_PEER_DEADLINE if quick else PEER_DEADLINE
    runner = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL)  # noqa: S603 - our own runner in the peers venv
    try:
        code = runner.wait(deadline)
    except subprocess.TimeoutExpired:
        _stop(runner)
        return {"status": "failed", "reason": f"overran its {deadline:g} s deadline"}
    if not out.exists():
        return {"status": "failed", "reason": f"the runner exited {code}"}
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def _stop(runner: "subprocess.Popen[bytes]") -> None:
    # SIGTERM first: the runner unwinds and stops the peer's worker on the way out.
    runner.send_signal(signal.SIGTERM)
    try:
        runner.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        runner.kill()
        runner.wait()
