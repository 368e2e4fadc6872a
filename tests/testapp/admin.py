"""The test app's admin: task history on an object's page, both ways Taskmill offers."""

from django.contrib import admin

from taskmill.admin import TaskHistoryInline, TaskHistoryMixin

from .models import Article, Token


@admin.register(Article)
class ArticleAdmin(admin.ModelAdmin):  # type: ignore[type-arg]  # generic only in the stubs
    inlines = [TaskHistoryInline]  # noqa: RUF012 - Django's admin API


@admin.register(Token)
class TokenAdmin(TaskHistoryMixin, admin.ModelAdmin):  # type: ignore[type-arg]  # generic only in the stubs
    pass
