"""Is this process a web server that should autostart the worker? Two signs, nothing else:

- runserver's serving process: the autoreloader's child (RUN_MAIN=true), or --noreload;
- a WSGI or ASGI server (gunicorn, uvicorn, daphne, hypercorn, mod_wsgi, uWSGI...): Django
  was set up by get_wsgi_application() or get_asgi_application(), found on the call stack.

Management commands (migrate, shell, the worker itself), test runners and scripts show
neither, so they never autostart. Servers that set Django up some other way call
taskmill.autostart.start() themselves.
"""

import sys
from collections.abc import Mapping, Sequence
from types import CodeType, FrameType
from typing import Final

from django.utils.autoreload import DJANGO_AUTORELOAD_ENV

# Daphne and other packages replace runserver under the same name.
RUNSERVER_COMMANDS: Final = frozenset({"runserver"})
# Where Django's application loaders live, and their names.
_APPLICATION_LOADERS: Final = (
    ("django.core.wsgi", "get_wsgi_application"),
    ("django.core.asgi", "get_asgi_application"),
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
    loaders = _imported_loaders()
    while frame is not None and loaders:
        if frame.f_code in loaders:
            return True
        frame = frame.f_back
    return False


def _imported_loaders() -> frozenset[CodeType]:
    # A loader can only be running if its module was imported; looking in sys.modules keeps
    # every other process (workers, management commands) from importing Django's request
    # handlers just to ask.
    return frozenset(
        getattr(sys.modules[module], name).__code__
        for module, name in _APPLICATION_LOADERS
        if module in sys.modules
    )
