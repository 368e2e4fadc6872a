"""System check: AUTOSTART settings that no worker could start with (taskmill.E040)."""

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.core import checks
from django.core.management.base import CommandError

from ..conf import get_settings
from ..exceptions import ConfigurationError
from .plan import build_plan


@checks.register()
def check_autostart(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """Report an AUTOSTART whose worker couldn't start (wrong queues, backend, environment)."""
    try:
        settings = get_settings()
    except ConfigurationError:
        return []  # taskmill.E010 reports it
    if not settings.AUTOSTART:
        return []
    try:
        build_plan(settings)
    except (CommandError, ConfigurationError) as error:
        return [
            checks.Error(
                f"TASKMILL['AUTOSTART'] is on, but no worker can be started: {error}",
                hint="Fix the setting named, or turn AUTOSTART off and run workers yourself.",
                id="taskmill.E040",
            )
        ]
    return []
