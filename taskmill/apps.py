"""The Django app: wires checks and receivers, imports every app's tasks module, and in a web
server process with AUTOSTART, starts the worker's keeper."""

from django.apps import AppConfig
from django.core.signals import setting_changed
from django.utils.module_loading import autodiscover_modules


class TaskmillConfig(AppConfig):
    name = "taskmill"
    verbose_name = "Taskmill"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401 - registers the system checks
        from .conf import reset_settings
        from .enqueue_plans import forget_plans

        setting_changed.connect(reset_settings, dispatch_uid="taskmill.reset_settings")
        setting_changed.connect(forget_plans, dispatch_uid="taskmill.forget_plans")
        # Workers resolve tasks by path, but schedules declared with @periodic/@cron exist
        # only once their module is imported.
        autodiscover_modules("tasks")
        # Last: the web server's worker (TASKMILL["AUTOSTART"]); does nothing elsewhere.
        from .autostart import start_if_web_server

        start_if_web_server()
