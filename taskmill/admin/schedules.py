"""Admin for schedules: see them with their last and next runs, enable or disable them, run
one now. Their definitions come from code and settings, so they are read-only here; the
actions go through operations.py."""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.tasks.exceptions import InvalidTask
from django.utils.safestring import SafeString

from ..masking import shown_arguments
from ..models import Schedule
from ..operations import run_schedule_now, set_schedules_enabled
from .display import pretty_json
from .permissions import RefuseUnpermittedActionsMixin

READ_ONLY_FIELDS = (
    "name",
    "backend",
    "task_path",
    "args_display",
    "kwargs_display",
    "cron",
    "interval_seconds",
    "timezone",
    "catch_up",
    "enabled",
    "in_code",
    "last_due_at",
    "next_due_at",
    "created_at",
    "updated_at",
)


@admin.register(Schedule)
class ScheduleAdmin(RefuseUnpermittedActionsMixin, admin.ModelAdmin):  # type: ignore[type-arg]  # generic only in the stubs
    list_display = (
        "name",
        "task_path",
        "timing",
        "timezone",
        "enabled",
        "last_due_at",
        "next_due_at",
    )
    list_filter = ("enabled", "in_code", "backend")
    search_fields = ("name", "task_path")
    ordering = ("name",)
    # The form holds only read-only fields: nothing of a schedule is edited here.
    fields = READ_ONLY_FIELDS
    readonly_fields = READ_ONLY_FIELDS
    actions = ("enable", "disable", "run_now")

    @admin.display(description="cron / interval")
    def timing(self, schedule: Schedule) -> str:
        return schedule.cron or f"every {schedule.interval_seconds:g} s"

    @admin.display(description="args")
    def args_display(self, schedule: Schedule) -> SafeString:
        return pretty_json(shown_arguments(schedule.args))

    @admin.display(description="kwargs")
    def kwargs_display(self, schedule: Schedule) -> SafeString:
        return pretty_json(shown_arguments(schedule.kwargs))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # declared in code or TASKMILL["SCHEDULE"]

    @admin.action(description="Enable selected schedules", permissions=["change"])
    def enable(self, request: HttpRequest, queryset: QuerySet[Schedule]) -> None:
        changed = set_schedules_enabled(queryset.values_list("name", flat=True), enabled=True)
        self.message_user(request, f"{changed} schedule(s) enabled.", messages.SUCCESS)

    @admin.action(description="Disable selected schedules", permissions=["change"])
    def disable(self, request: HttpRequest, queryset: QuerySet[Schedule]) -> None:
        changed = set_schedules_enabled(queryset.values_list("name", flat=True), enabled=False)
        self.message_user(request, f"{changed} schedule(s) disabled.", messages.SUCCESS)

    @admin.action(description="Run selected schedules' tasks now", permissions=["change"])
    def run_now(self, request: HttpRequest, queryset: QuerySet[Schedule]) -> None:
        for name in queryset.values_list("name", flat=True):
            try:
                result = run_schedule_now(name)
            except (InvalidTask, TypeError, ValueError) as error:  # no such task, bad arguments
                self.message_user(request, f"{name}: not enqueued: {error}", messages.ERROR)
            else:
                self.message_user(request, f"{name}: enqueued {result.id}.", messages.SUCCESS)
