"""The shop in the admin; each customer and order shows the tasks run for it."""

from django.contrib import admin
from django.db.models import Model

import taskmill

from .models import Customer, Order


class TaskHistoryAdmin(admin.ModelAdmin):  # type: ignore[type-arg]  # generic only in the stubs
    """Show taskmill.history(instance): the tasks enqueued with for_object=instance."""

    readonly_fields = ("task_history",)

    @admin.display(description="tasks")
    def task_history(self, instance: Model) -> str:
        records = taskmill.history(instance)
        return ", ".join(f"{r.task_path.rsplit('.', 1)[-1]}: {r.state}" for r in records) or "—"


@admin.register(Customer)
class CustomerAdmin(TaskHistoryAdmin):
    list_display = ("name", "email")


@admin.register(Order)
class OrderAdmin(TaskHistoryAdmin):
    list_display = ("__str__", "customer", "total", "status", "created_at")
    list_filter = ("status",)
