"""The shop in the admin; each customer and order shows the tasks enqueued for it
(for_object=...) with Taskmill's TaskHistoryInline, each linking to its task page."""

from django.contrib import admin

from taskmill.admin import TaskHistoryInline

from .models import Customer, Order


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):  # type: ignore[type-arg]  # generic only in the stubs
    list_display = ("name", "email")
    inlines = (TaskHistoryInline,)


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):  # type: ignore[type-arg]  # generic only in the stubs
    list_display = ("__str__", "customer", "total", "status", "created_at")
    list_filter = ("status",)
    inlines = (TaskHistoryInline,)
