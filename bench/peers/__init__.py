"""Peer task queues measured with the same workloads as Taskmill (`python -m bench` runs them).

Each peer module runs in the peers virtualenv (.venv-peers, requirements/peers.txt), never in
Taskmill's: it defines the peer's app and its no-op task at import (so the peer's own worker
command can load it) and measures when run as `python -m bench.peers.<peer> --out FILE`.
harness.py holds what they share; run.py, in Taskmill's venv, starts them and reads their JSON.
"""
