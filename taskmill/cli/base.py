"""What a subcommand of `manage.py taskmill` is: a summary, its arguments, and its handler."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.management.base import BaseCommand, CommandParser


@dataclass(frozen=True, slots=True)
class Subcommand:
    summary: str
    add_arguments: Callable[[CommandParser], object]
    run: Callable[[BaseCommand, dict[str, Any]], None]
    # The worker runs Django's system checks itself, so that it can wait for a database that
    # is away as it starts (on MariaDB/MySQL the checks ask the server); the command runs
    # them for the others.
    runs_own_checks: bool = False
