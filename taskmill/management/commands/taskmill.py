"""`manage.py taskmill <subcommand>`: parses arguments and dispatches; no logic of its own."""

import argparse
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from taskmill.cli import SUBCOMMANDS
from taskmill.cli.checks import run_checks


class Command(BaseCommand):
    help = "Taskmill: run workers and manage tasks."
    # Run by handle() instead of before it: the worker runs them itself (Subcommand).
    requires_system_checks = ()

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--skip-checks", action="store_true", help="Skip system checks.")
        subparsers = parser.add_subparsers(
            dest="subcommand", required=True, parser_class=CommandParser
        )
        for name, subcommand in SUBCOMMANDS.items():
            summary = subcommand.summary
            sub = subparsers.add_parser(name, help=summary, description=summary.capitalize())
            # Accept -v and --skip-checks after the subcommand too; SUPPRESS keeps one given
            # before it.
            sub.add_argument(
                "-v",
                "--verbosity",
                type=int,
                choices=[0, 1, 2, 3],
                default=argparse.SUPPRESS,
                help="0 quiet, 1 normal, 2-3 debug",
            )
            sub.add_argument(
                "--skip-checks",
                action="store_true",
                default=argparse.SUPPRESS,
                help="Skip system checks.",
            )
            subcommand.add_arguments(sub)

    def handle(self, *args: Any, **options: Any) -> None:
        subcommand = SUBCOMMANDS[options["subcommand"]]
        if not options["skip_checks"] and not subcommand.runs_own_checks:
            run_checks(self)
        subcommand.run(self, options)
