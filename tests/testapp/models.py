"""Models the tests pass to tasks (by reference) and the ledger that proves exactly-once."""

from django.db import models


class Article(models.Model):
    title = models.CharField(max_length=200)

    def __str__(self) -> str:
        return self.title


class Token(models.Model):
    """A model with a UUID primary key, to prove references keep non-integer keys."""

    id = models.UUIDField(primary_key=True)
    label = models.CharField(max_length=50)

    def __str__(self) -> str:
        return self.label


class LedgerEntry(models.Model):
    """One row per execution of a ledger task, written in the task's own transaction."""

    result_id = models.CharField(max_length=64)
    key = models.CharField(max_length=100)
    pid = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["key"], name="testapp_ledger_key_idx")]  # noqa: RUF012

    def __str__(self) -> str:
        return f"{self.key} ({self.result_id})"


class Execution(models.Model):
    """One row per execution of record_execution: which attempt of which task ran, and where.

    Written in the task's own transaction, so a row exists for every execution that reached
    the database, even one whose worker lost its lease and whose outcome was refused.
    """

    result_id = models.CharField(max_length=64)
    attempt = models.PositiveIntegerField()
    pid = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.result_id} attempt {self.attempt}"


class SignalRecord(models.Model):
    """One row per task_started / task_finished signal a worker child sent."""

    result_id = models.CharField(max_length=64)
    signal = models.CharField(max_length=20)
    status = models.CharField(max_length=20)
    sender = models.CharField(max_length=200)

    def __str__(self) -> str:
        return f"{self.signal} {self.result_id} {self.status}"
