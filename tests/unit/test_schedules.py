"""Declaring schedules: @periodic and @cron on tasks, and the SCHEDULE setting."""

from collections.abc import Iterator
from datetime import timedelta

import pytest

from taskmill import cron, periodic, task
from taskmill.conf import build_settings
from taskmill.exceptions import ConfigurationError
from taskmill.schedules import Registry, registry, specs_from_setting
from taskmill.timing import CatchUp, Timing


def report(day: str = "") -> str:
    return day


def cleanup() -> None:
    return None


@pytest.fixture
def declared() -> Iterator[Registry]:
    with registry.isolated() as isolated:
        yield isolated


def test_periodic__registers_the_task_with_its_arguments(declared: Registry) -> None:
    reporting = task(report)

    decorated = periodic(every=timedelta(minutes=10), args=["mon"], start_now=True)(reporting)

    assert decorated is reporting
    (spec,) = [s for s in declared.specs() if s.task_path == reporting.module_path]
    assert spec.name == reporting.module_path
    assert spec.timing == Timing(every=timedelta(minutes=10), timezone="UTC")
    assert spec.args == ("mon",)
    assert spec.start_now is True
    assert spec.catch_up == CatchUp.ONCE
    assert spec.backend == "default"


def test_cron__registers_expression_time_zone_and_catch_up(declared: Registry) -> None:
    cron("30 7 * * 1", timezone="Europe/Paris", catch_up="skip", name="weekly")(task(cleanup))

    (spec,) = [s for s in declared.specs() if s.name == "weekly"]
    assert spec.timing == Timing(cron="30 7 * * 1", timezone="Europe/Paris")
    assert spec.catch_up == CatchUp.SKIP


def test_cron__time_zone_defaults_to_settings_time_zone(
    declared: Registry, settings: object
) -> None:
    cron("@daily", name="daily")(task(cleanup))

    (spec,) = [s for s in declared.specs() if s.name == "daily"]
    assert spec.timing.timezone == "UTC"


def test_decorators__refuse_a_plain_function() -> None:
    with pytest.raises(TypeError, match=r"@periodic decorates a task: put it above @task"):
        periodic(every=60)(cleanup)  # type: ignore[arg-type]  # the mistake under test


def test_decorators__same_name_with_other_settings_is_an_error(declared: Registry) -> None:
    cleaning = task(cleanup)
    periodic(every=60)(cleaning)
    periodic(every=60)(cleaning)  # the same declaration again (a re-import) is fine

    with pytest.raises(ConfigurationError, match=r"declared twice .* own name="):
        periodic(every=120)(cleaning)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"every": 0}, r"every must be a positive"),
        ({"every": 60, "catch_up": "always"}, r"catch_up must be 'once' or 'skip'"),
        ({"every": 60, "args": [object()]}, r"args\[0\]"),
    ],
)
def test_periodic__bad_declarations_name_the_schedule(
    declared: Registry, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=rf"Schedule 'bad'.*{message}"):
        periodic(name="bad", **kwargs)(task(cleanup))  # type: ignore[arg-type]  # under test


def test_cron__unknown_time_zone_names_the_schedule(declared: Registry) -> None:
    with pytest.raises(ConfigurationError, match=r"Schedule 'n': unknown timezone 'Mars/Olympus'"):
        cron("@daily", name="n", timezone="Mars/Olympus")(task(cleanup))


def test_cron__invalid_expression_names_the_schedule(declared: Registry) -> None:
    with pytest.raises(ConfigurationError, match=r"Schedule 'nightly': invalid cron expression"):
        cron("0 25 * * *", name="nightly")(task(cleanup))


def test_setting__entries_become_specs() -> None:
    (nightly, often) = specs_from_setting(
        {
            "nightly": {"task": "app.tasks.report", "cron": "0 2 * * *", "args": ["x"]},
            "often": {"task": "app.tasks.cleanup", "every": 30, "start_now": True},
        }
    )

    assert nightly.timing.cron == "0 2 * * *"
    assert nightly.args == ("x",)
    assert often.timing.every == timedelta(seconds=30)
    assert often.start_now


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("0 2 * * *", r"must be a dict"),
        ({"task": "app.tasks.x", "cron": "0 2 * * *", "when": 1}, r"unknown key\(s\) 'when'"),
        ({"cron": "0 2 * * *"}, r"\['task'\] must be the dotted path"),
        ({"task": "app.tasks.x"}, r"give either cron or every"),
        ({"task": "app.tasks.x", "cron": "0 2 * * *", "every": 5}, r"give either cron or every"),
        ({"task": "app.tasks.x", "cron": "0 2 * *"}, r"invalid cron expression"),
        ({"task": "app.tasks.x", "cron": "0 2 * * *", "start_now": True}, r"start_now applies"),
    ],
)
def test_setting__malformed_entries_are_refused_naming_them(entry: object, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        specs_from_setting({"nightly": entry})


def test_conf__schedule_setting_is_validated_with_the_other_settings() -> None:
    with pytest.raises(ConfigurationError, match=r"Schedule 'n': invalid cron expression"):
        build_settings({"SCHEDULE": {"n": {"task": "a.b", "cron": "nope"}}})


def test_conf__failed_result_ttl_takes_a_duration_or_none() -> None:
    assert build_settings({"FAILED_RESULT_TTL": timedelta(days=30)}).FAILED_RESULT_TTL == 2592000
    assert build_settings({"FAILED_RESULT_TTL": None}).FAILED_RESULT_TTL is None
    with pytest.raises(ConfigurationError, match=r"FAILED_RESULT_TTL'\] must be greater than 0"):
        build_settings({"FAILED_RESULT_TTL": 0})
