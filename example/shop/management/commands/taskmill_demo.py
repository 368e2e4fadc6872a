"""`manage.py taskmill_demo`: a guided tour of Taskmill against a real worker, in seconds."""

import signal
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from shop.demo.guide import DemoOptions, Guide
from shop.demo.narrator import Narrator


class Command(BaseCommand):
    help = (
        "Enqueue a tour of tasks, run them on a real worker, narrate what happens and sum up. "
        "Exits non-zero if anything is not as expected."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--concurrency", type=int, default=4, help="worker child processes (default: 4)"
        )
        parser.add_argument(
            "--wait",
            type=float,
            default=60.0,
            help="seconds every result gets to finish (default: 60)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        # SIGTERM unwinds like Ctrl-C, so the worker the demo started is stopped either way.
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        guide = Guide(
            Narrator(self.stdout, self.style),
            DemoOptions(concurrency=options["concurrency"], wait=options["wait"]),
        )
        try:
            guide.run()
        except KeyboardInterrupt:
            raise CommandError("interrupted; the worker was stopped.", returncode=130) from None
