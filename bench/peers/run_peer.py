"""`python -m bench.peers.run_peer PEER --plan JSON --work DIR --out FILE`, in the peers venv:
measure one peer (huey, celery, pgqueuer) and write its figures and versions as JSON."""

import importlib
import json
import signal
import sys
import time
import traceback
from types import FrameType
from typing import Any, Final

from .harness import parse_arguments, say

PEERS: Final = {
    "huey": "bench.peers.huey_peer",
    "celery": "bench.peers.celery_peer",
    "pgqueuer": "bench.peers.pgqueuer_peer",
}


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    # Unwind, so the `with` blocks stop the peer's worker this process started.
    raise SystemExit(128 + signum)


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGTERM, _on_sigterm)
    if not argv or argv[0] not in PEERS:
        sys.stderr.write(f"usage: python -m bench.peers.run_peer {{{','.join(PEERS)}}} ...\n")
        return 2
    options = parse_arguments(argv[1:], __doc__ or "")
    marks = options.work / "marks"
    marks.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {}
    started = time.monotonic()
    try:
        module = importlib.import_module(PEERS[argv[0]])
        from .measure import measure

        peer = module.PEER()
        result.update(name=peer.name, versions=peer.versions, settings=peer.settings)
        say(peer.name, f"measuring ({', '.join(f'{k} {v}' for k, v in peer.versions.items())})")
        try:
            result["measurements"] = measure(peer, options.workload, marks)
        finally:
            peer.close()
        result["status"] = "ok"
    except Exception as error:
        result["status"] = "failed"
        result["reason"] = f"{type(error).__name__}: {error}".splitlines()[0][:200]
        result["traceback"] = "".join(traceback.format_exception(error))
        say(argv[0], f"FAILED: {result['reason']}")
    result["duration_s"] = round(time.monotonic() - started, 1)
    options.out.write_text(json.dumps(result, indent=2))
    return 0 if result["status"] == "ok" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
