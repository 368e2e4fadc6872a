"""Which processes autostart: runserver's serving process and WSGI/ASGI servers, nothing else."""

import inspect
from collections.abc import Callable
from types import FrameType
from unittest import mock

import pytest
from django.core.asgi import get_asgi_application
from django.core.wsgi import get_wsgi_application

from taskmill.autostart.detection import (
    is_loading_server_application,
    is_serving_runserver,
    is_web_server,
)


@pytest.mark.parametrize(
    ("argv", "environ"),
    [
        (["manage.py", "runserver"], {"RUN_MAIN": "true"}),
        (["manage.py", "runserver", "--noreload"], {}),
        (["/venv/lib/django/__main__.py", "runserver", "0:8000", "--noreload"], {}),
    ],
)
def test_is_serving_runserver__the_serving_process(
    argv: list[str], environ: dict[str, str]
) -> None:
    assert is_serving_runserver(argv, environ) is True


@pytest.mark.parametrize(
    ("argv", "environ"),
    [
        (["manage.py", "runserver"], {}),  # the autoreloader: it only watches files
        (["manage.py", "migrate"], {"RUN_MAIN": "true"}),
        (["manage.py", "shell"], {}),
        (["manage.py", "taskmill", "worker"], {"RUN_MAIN": "true"}),
        (["manage.py", "test", "runserver"], {"RUN_MAIN": "true"}),
        (["pytest", "tests"], {}),
        (["manage.py"], {}),
        ([], {}),
    ],
)
def test_is_serving_runserver__no_for_everything_else(
    argv: list[str], environ: dict[str, str]
) -> None:
    assert is_serving_runserver(argv, environ) is False


class _Stop(Exception):
    """Ends get_*_application() once django.setup() was reached."""


@pytest.mark.parametrize("loader", [get_wsgi_application, get_asgi_application])
def test_is_loading_server_application__inside_django_setup_of_a_server(
    loader: Callable[[], object],
) -> None:
    seen: list[bool] = []

    def fake_setup(*args: object, **kwargs: object) -> None:
        seen.append(is_loading_server_application(inspect.currentframe()))
        raise _Stop

    with mock.patch("django.setup", fake_setup), pytest.raises(_Stop):
        loader()

    assert seen == [True]


def test_is_loading_server_application__not_elsewhere() -> None:
    assert is_loading_server_application(inspect.currentframe()) is False
    assert is_loading_server_application(None) is False


def test_is_web_server__either_sign_is_enough() -> None:
    frame: FrameType | None = inspect.currentframe()

    assert is_web_server(["manage.py", "runserver", "--noreload"], {}, frame) is True
    assert is_web_server(["manage.py", "migrate"], {}, frame) is False
