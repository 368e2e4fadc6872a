"""What autostart starts: the worker's command line and environment, built from the TASKMILL
settings and checked the way `manage.py taskmill worker` checks its flags."""

import os
import sys
from dataclasses import dataclass
from typing import Final

from django.tasks import DEFAULT_TASK_BACKEND_ALIAS
from django.utils.autoreload import DJANGO_AUTORELOAD_ENV

from ..conf import TaskmillSettings
from ..exceptions import ConfigurationError

WORKER_GRACE: Final = 5.0  # what running tasks get to finish when the server stops


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """What the keeper starts: a worker for one backend, its queues and concurrency."""

    backend_alias: str
    database_alias: str
    queue_names: tuple[str, ...]
    concurrency: int

    def command(self, parent_pid: int) -> list[str]:
        """The worker's command line, run with this interpreter."""
        return [
            sys.executable,
            "-m",
            "django",
            "taskmill",
            "worker",
            f"--backend={self.backend_alias}",
            f"--queues={','.join(self.queue_names)}",
            f"--concurrency={self.concurrency}",
            f"--grace={WORKER_GRACE}",
            f"--parent-pid={parent_pid}",
        ]


def build_plan(settings: TaskmillSettings) -> Plan:
    """Return what to start; raise CommandError or ConfigurationError saying what is wrong."""
    from ..worker.setup import build_options

    # The worker process loads the settings the way this process did: by this variable.
    if not os.environ.get("DJANGO_SETTINGS_MODULE"):
        raise ConfigurationError(
            "DJANGO_SETTINGS_MODULE is not set (settings.configure()?), so the worker process "
            "can't load these settings; run `manage.py taskmill worker` yourself instead."
        )
    _check_queues(settings)
    options = build_options(
        backend_alias=DEFAULT_TASK_BACKEND_ALIAS,
        queues=settings.AUTOSTART_QUEUES,
        concurrency=settings.AUTOSTART_CONCURRENCY,
        max_tasks_per_child=None,
        burst=False,
        grace=WORKER_GRACE,
        pool="fork",
    )
    return Plan(
        backend_alias=options.backend_alias,
        database_alias=options.database_alias,
        queue_names=options.queue_names,
        concurrency=options.concurrency,
    )


def _check_queues(settings: TaskmillSettings) -> None:
    """Raise ConfigurationError, in the settings' words, for what the worker would refuse."""
    from ..worker.setup import queues_to_serve, serving_backend

    try:
        backend = serving_backend(DEFAULT_TASK_BACKEND_ALIAS, "The autostarted worker's backend")
        queues_to_serve(backend, settings.AUTOSTART_QUEUES, "TASKMILL['AUTOSTART_QUEUES']")
    except ValueError as error:
        raise ConfigurationError(str(error)) from error


def worker_environment() -> dict[str, str]:
    """This process's environment, with its import path, for the worker process."""
    env = dict(os.environ)
    # The server may have extended sys.path (manage.py's folder, gunicorn --chdir or
    # --pythonpath); the worker must import the same project.
    paths = [entry or os.getcwd() for entry in sys.path]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    env.pop(DJANGO_AUTORELOAD_ENV, None)
    return env
