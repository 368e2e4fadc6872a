"""Settings for the processes of the database-fault tests: the test settings, plus two changes.

- Persistent connections (CONN_MAX_AGE=None), as a busy site keeps them: a connection killed
  on the server is then one the enqueuer still holds, so its next enqueue meets the fault.
- A short SQLite busy timeout, so a writer holding the lock outlasts it within a bounded test.
"""

from tests.settings import *  # noqa: F403 - these settings extend the test settings
from tests.settings import DATABASES

SQLITE_BUSY_TIMEOUT = 1.0

DATABASES["default"]["CONN_MAX_AGE"] = None
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"]["timeout"] = SQLITE_BUSY_TIMEOUT
