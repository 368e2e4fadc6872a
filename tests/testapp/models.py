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
    # The attempt that wrote the row (0: a task that doesn't say), so the chaos tests can match
    # each duplicate to an attempt the task's record lists.
    attempt = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["key"], name="testapp_ledger_key_idx")]  # noqa: RUF012

    def __str__(self) -> str:
        return f"{self.key} ({self.result_id})"


class SignalRecord(models.Model):
    """One row per task_started / task_finished signal a worker child sent."""

    result_id = models.CharField(max_length=64)
    signal = models.CharField(max_length=20)
    status = models.CharField(max_length=20)
    sender = models.CharField(max_length=200)

    def __str__(self) -> str:
        return f"{self.signal} {self.result_id} {self.status}"
