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
