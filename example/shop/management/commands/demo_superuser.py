"""`manage.py demo_superuser`: create the demo's superuser if missing and say where to log in
(what `make serve` prints before it starts runserver)."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from shop.demo.site import DEFAULT_PORT, USERNAME, ensure_superuser, visit_lines


class Command(BaseCommand):
    help = "Create the demo's superuser unless it exists, and print the URLs and credentials."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--port", type=int, default=DEFAULT_PORT, help="the port runserver will listen on"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        created = ensure_superuser()
        self.stdout.write(
            self.style.MIGRATE_HEADING(
                "The example shop, with a Taskmill worker started by runserver (AUTOSTART):"
            )
        )
        for line in visit_lines(options["port"]):
            self.stdout.write(line)
        if not created:
            self.stdout.write(
                f"  (user {USERNAME!r} already existed: its password was left as it was)"
            )
        self.stdout.write("  Stop with Ctrl-C; the worker stops with the server.")
