"""Every public Taskmill exception, in one hierarchy."""

from django.core.exceptions import ImproperlyConfigured
from django.tasks.exceptions import InvalidTask


class TaskmillError(Exception):
    """Base class of Taskmill's own runtime errors."""


class ConfigurationError(TaskmillError, ImproperlyConfigured):
    """A TASKMILL setting or a backend's OPTIONS has a wrong value."""


class InvalidTaskOptions(TaskmillError, InvalidTask):
    """A task option (max_attempts, timeout, ...) has a wrong value."""


class TaskCancelled(TaskmillError):
    """The task was cancelled before it could finish."""


class WorkerLost(TaskmillError):
    """The worker running the task vanished; its lease expired."""


class TaskNotRegistered(TaskmillError, InvalidTask):
    """A stored task path does not name a registered Taskmill task."""


class Retry(Exception):
    """Raise from a task to run it again later, counting an attempt."""

    def __init__(self, delay: float | None = None, reason: str = "") -> None:
        super().__init__(reason or "retry requested")
        self.delay = delay
        self.reason = reason


class QueueError(TaskmillError):
    """Base class of errors the queue layer raises after translating a driver error."""


class QueueBusy(QueueError):
    """The database is locked by another writer; the operation may be retried."""


class DatabaseUnavailable(QueueError):
    """The database can't be reached; reconnect with backoff."""


class ArgumentsTooLarge(TaskmillError, ValueError):
    """A task's encoded arguments exceed TASKMILL['MAX_ARGUMENT_BYTES']."""


class DependencyFailed(TaskCancelled):
    """A task this one depends on failed or was cancelled, so this one was cancelled."""


class TaskCrashed(TaskmillError):
    """The process running the task died (a segfault, os._exit, or the out-of-memory killer)."""


class InvalidTaskRecord(TaskmillError, ValueError):
    """A stored task row can't be run as it stands (written by hand or by a migration)."""


class NotRetryable(TaskmillError, ValueError):
    """Only a failed or cancelled task can be retried by hand."""
