"""The subcommands of `manage.py taskmill`, one module per area; the command only dispatches."""

from . import inspect, tasks, worker
from .base import Subcommand

SUBCOMMANDS: dict[str, Subcommand] = {
    **worker.SUBCOMMANDS,
    **tasks.SUBCOMMANDS,
    **inspect.SUBCOMMANDS,
}

__all__ = ["SUBCOMMANDS", "Subcommand"]
