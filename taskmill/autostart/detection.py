"""Is this process a web server that should autostart the worker? Two signs, nothing else:

- runserver's serving process: the autoreloader's child (RUN_MAIN=true), or --noreload;
- a WSGI or ASGI server (gunicorn, uvicorn, daphne, hypercorn, mod_wsgi, uWSGI...): Django
  was set up by get_wsgi_application() or get_asgi_application(), found on the call stack.

Management commands (migrate, shell, the worker itself), test runners and scripts show
neither, so they never autostart. Servers that set Django up some other way call
taskmill.autostart.start() themselves.
"""

from collections.abc import Mapping, Sequence
from types import FrameType
from typing import Final

from django.core.asgi import get_asgi_application
from django.core.wsgi import get_wsgi_application
from django.utils.autoreload import DJANGO_AUTORELOAD_ENV

# Daphne and other packages replace runserver under the same name.
RUNSERVER_COMMANDS: Final = frozenset({"runserver"})
_APPLICATION_LOADERS: Final = frozenset(
    {get_wsgi_application.__code__, get_asgi_application.__code__}
)


def is_web_server(argv: Sequence[str], environ: Mapping[str, str], frame: FrameType | None) -> bool:
    """Return True if this process serves web requests (frame: where django.setup() runs)."""
    return is_serving_runserver(argv, environ) or is_loading_server_application(frame)


def is_serving_runserver(argv: Sequence[str], environ: Mapping[str, str]) -> bool:
    """Return True in the process of `manage.py runserver` that serves requests.

    With the autoreloader, the process the user started only watches files and restarts a
    child that serves (and gets RUN_MAIN=true); that child is the one.
    """
    # Django's own dispatch: the subcommand is always argv[1] (ManagementUtility.execute).
    if len(argv) < 2 or argv[1] not in RUNSERVER_COMMANDS:
        return False
    return environ.get(DJANGO_AUTORELOAD_ENV) == "true" or "--noreload" in argv[2:]


def is_loading_server_application(frame: FrameType | None) -> bool:
    """Return True if get_wsgi_application() or get_asgi_application() is on frame's stack."""
    while frame is not None:
        if frame.f_code in _APPLICATION_LOADERS:
            return True
        frame = frame.f_back
    return False
