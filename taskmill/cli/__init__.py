"""The subcommands of `manage.py taskmill`, one module per area; the command only dispatches."""

from . import tasks, worker
from .base import Subcommand

SUBCOMMANDS: dict[str, Subcommand] = {**worker.SUBCOMMANDS, **tasks.SUBCOMMANDS}

__all__ = ["SUBCOMMANDS", "Subcommand"]
