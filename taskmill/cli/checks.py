"""Django's system checks, as `manage.py taskmill` runs them."""

from django.core.management.base import BaseCommand
from django.db import OperationalError, connections

from ..exceptions import DatabaseUnavailable, QueueBusy
from ..queue.errors import translate


def run_checks(command: BaseCommand) -> None:
    """Run Django's system checks; a SQLite database locked by another writer raises its
    OperationalError instead of passing for a SQLite without JSON."""
    _ask_sqlite_for_json_without_a_lock()
    command.check()


def _ask_sqlite_for_json_without_a_lock() -> None:
    # Django's SQLite backend asks whether JSON works inside atomic(). With transaction_mode
    # "IMMEDIATE" that takes the write lock, so a lock another writer holds past the busy
    # timeout reads as "no JSON support", cached for the life of the process: the checks then
    # fail with fields.E180 and JSON queries take the wrong path. The question needs no lock.
    # Asked here first, a database that is busy raises; one without JSON is left for Django's
    # own probe to report.
    for connection in connections.all():
        features = connection.features
        if connection.vendor != "sqlite" or "supports_json_field" in features.__dict__:
            continue
        try:
            with connection.cursor() as cursor:
                cursor.execute("""SELECT JSON('{"a": "b"}')""")
        except OperationalError as error:
            if isinstance(translate(error), QueueBusy | DatabaseUnavailable):
                raise
            continue
        # Where cached_property keeps its value: the answer Django's probe gives unlocked.
        features.__dict__["supports_json_field"] = True
