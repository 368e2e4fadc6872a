"""The subcommands of `manage.py taskmill`, one module per area; the command only dispatches."""

from . import inspect, schedules, tasks, worker
from .base import Subcommand

SUBCOMMANDS: dict[str, Subcommand] = {
    **worker.SUBCOMMANDS,
    **tasks.SUBCOMMANDS,
    **schedules.SUBCOMMANDS,
    **inspect.SUBCOMMANDS,
}

__all__ = ["SUBCOMMANDS", "Subcommand"]
