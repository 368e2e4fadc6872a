"""TASKMILL settings: defaults, and every mistake reported with the key's name."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from taskmill.conf import TaskmillSettings, build_settings, get_settings
from taskmill.exceptions import ConfigurationError


def test_build_settings__none_gives_the_defaults() -> None:
    built = build_settings(None)

    assert built == TaskmillSettings()
    assert built.AUTOSTART is False
    assert built.LEASE_SECONDS == 30.0
    assert built.HEARTBEAT_SECONDS == 5.0
    assert built.DEFAULT_RESULT_TTL == 7 * 24 * 3600
    assert built.MAX_ARGUMENT_BYTES == 1024 * 1024


def test_build_settings__empty_dict_gives_the_defaults() -> None:
    assert build_settings({}) == TaskmillSettings()


def test_build_settings__valid_values_are_kept() -> None:
    built = build_settings(
        {
            "AUTOSTART": True,
            "LEASE_SECONDS": 60,
            "HEARTBEAT_SECONDS": 2.5,
            "POLL_INTERVAL": 0.2,
            "CANCEL_GRACE_SECONDS": 0,
            "LOG_CAP_BYTES": 2048,
            "MAX_ARGUMENT_BYTES": 4096,
            "SCHEDULE": {},
        }
    )

    assert built.AUTOSTART is True
    assert built.LEASE_SECONDS == 60
    assert built.HEARTBEAT_SECONDS == 2.5
    assert built.POLL_INTERVAL == 0.2
    assert built.CANCEL_GRACE_SECONDS == 0
    assert built.LOG_CAP_BYTES == 2048
    assert built.MAX_ARGUMENT_BYTES == 4096
    assert built.SCHEDULE == {}


def test_build_settings__result_ttl_timedelta_is_normalised_to_seconds() -> None:
    assert build_settings({"DEFAULT_RESULT_TTL": timedelta(hours=2)}).DEFAULT_RESULT_TTL == 7200.0
    assert build_settings({"DEFAULT_RESULT_TTL": 90}).DEFAULT_RESULT_TTL == 90.0


def test_build_settings__settings_are_frozen() -> None:
    built = build_settings(None)

    with pytest.raises(AttributeError):
        built.LEASE_SECONDS = 1  # type: ignore[misc]  # the mistake under test


def test_build_settings__unknown_keys_that_are_not_text_are_reported() -> None:
    with pytest.raises(
        ConfigurationError, match=r"Unknown key\(s\) in settings.TASKMILL: 'X', 1\."
    ):
        build_settings({1: 2, "X": 3})


def test_build_settings__not_a_dict_is_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"settings\.TASKMILL must be a dict, not list"):
        build_settings(["AUTOSTART"])


def test_build_settings__unknown_keys_are_named_with_the_allowed_ones() -> None:
    with pytest.raises(ConfigurationError) as caught:
        build_settings({"LEASE_SECOND": 30, "AUTO_START": True})

    message = str(caught.value)
    assert "Unknown key(s) in settings.TASKMILL: 'AUTO_START', 'LEASE_SECOND'." in message
    assert "LEASE_SECONDS" in message
    assert "AUTOSTART" in message


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("AUTOSTART", "yes", "bool"),
        ("AUTOSTART", 1, "bool"),
        ("LEASE_SECONDS", "30", "int or float"),
        ("POLL_INTERVAL", None, "int or float"),
        ("DEFAULT_RESULT_TTL", "7d", "int or float or timedelta"),
        ("LOG_CAP_BYTES", 4096.0, "int"),
        ("MAX_ARGUMENT_BYTES", "1MB", "int"),
        ("SCHEDULE", [], "dict"),
    ],
)
def test_build_settings__wrong_type_names_the_key_and_the_allowed_types(
    key: str, value: object, expected: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        build_settings({key: value})

    assert str(caught.value) == (
        f"TASKMILL[{key!r}] must be {expected}, not {type(value).__name__} ({value!r})."
    )


@pytest.mark.parametrize(
    "key",
    [
        "LEASE_SECONDS",
        "HEARTBEAT_SECONDS",
        "POLL_INTERVAL",
        "CANCEL_GRACE_SECONDS",
        "DEFAULT_RESULT_TTL",
        "LOG_CAP_BYTES",
        "MAX_ARGUMENT_BYTES",
    ],
)
def test_build_settings__bool_where_a_number_belongs_is_refused(key: str) -> None:
    with pytest.raises(ConfigurationError, match=rf"TASKMILL\['{key}'\] must be .*, not bool"):
        build_settings({key: True})


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"LEASE_SECONDS": 0}, "TASKMILL['LEASE_SECONDS'] must be greater than 0."),
        ({"HEARTBEAT_SECONDS": -1}, "TASKMILL['HEARTBEAT_SECONDS'] must be greater than 0."),
        ({"POLL_INTERVAL": 0.0}, "TASKMILL['POLL_INTERVAL'] must be greater than 0."),
        ({"DEFAULT_RESULT_TTL": timedelta(0)}, "TASKMILL['DEFAULT_RESULT_TTL'] must be greater"),
        ({"CANCEL_GRACE_SECONDS": -0.5}, "TASKMILL['CANCEL_GRACE_SECONDS'] must be >= 0."),
        ({"LOG_CAP_BYTES": 1023}, "TASKMILL['LOG_CAP_BYTES'] must be at least 1024 bytes."),
        ({"MAX_ARGUMENT_BYTES": 0}, "TASKMILL['MAX_ARGUMENT_BYTES'] must be at least 1024"),
    ],
)
def test_build_settings__out_of_range_values_name_the_key_and_the_bound(
    raw: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        build_settings(raw)

    assert str(caught.value).startswith(message)


def test_build_settings__heartbeat_must_fit_twice_in_the_lease() -> None:
    with pytest.raises(ConfigurationError) as caught:
        build_settings({"LEASE_SECONDS": 10, "HEARTBEAT_SECONDS": 6})

    message = str(caught.value)
    assert "TASKMILL['HEARTBEAT_SECONDS'] (6) must be at most half of LEASE_SECONDS (10)" in message


def test_build_settings__heartbeat_of_exactly_half_the_lease_is_allowed() -> None:
    assert build_settings({"LEASE_SECONDS": 10, "HEARTBEAT_SECONDS": 5}).HEARTBEAT_SECONDS == 5


def test_configuration_error__is_an_improperly_configured() -> None:
    assert issubclass(ConfigurationError, ImproperlyConfigured)


def test_get_settings__reads_the_django_setting_and_follows_overrides() -> None:
    assert get_settings() == build_settings(getattr(settings, "TASKMILL", None))

    with override_settings(TASKMILL={"POLL_INTERVAL": 0.25}):
        assert get_settings().POLL_INTERVAL == 0.25

    assert get_settings() == build_settings(getattr(settings, "TASKMILL", None))


def test_get_settings__bad_override_raises_when_read() -> None:
    with override_settings(TASKMILL={"NOPE": 1}), pytest.raises(ConfigurationError, match="NOPE"):
        get_settings()


def test_build_settings__autostart_defaults() -> None:
    built = build_settings(None)

    assert built.AUTOSTART_QUEUES is None
    assert built.AUTOSTART_CONCURRENCY == 2


def test_build_settings__autostart_queues_and_concurrency_are_kept() -> None:
    built = build_settings({"AUTOSTART_QUEUES": ["default", "low"], "AUTOSTART_CONCURRENCY": 4})

    assert built.AUTOSTART_QUEUES == ("default", "low")
    assert built.AUTOSTART_CONCURRENCY == 4


def test_build_settings__autostart_queues_none_means_every_queue() -> None:
    assert build_settings({"AUTOSTART_QUEUES": None}).AUTOSTART_QUEUES is None


@pytest.mark.parametrize("value", [[], [""], ["default", 3]])
def test_build_settings__autostart_queues_must_name_queues(value: list[object]) -> None:
    with pytest.raises(ConfigurationError) as caught:
        build_settings({"AUTOSTART_QUEUES": value})

    assert str(caught.value) == (
        "TASKMILL['AUTOSTART_QUEUES'] must be a non-empty list of queue names, or None for all "
        f"of the backend's queues; got {value!r}."
    )


def test_build_settings__autostart_queues_as_one_string_is_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"must be list or tuple, not str \('default'\)"):
        build_settings({"AUTOSTART_QUEUES": "default"})


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0, "TASKMILL['AUTOSTART_CONCURRENCY'] must be at least 1."),
        (True, "TASKMILL['AUTOSTART_CONCURRENCY'] must be int, not bool (True)."),
        (2.0, "TASKMILL['AUTOSTART_CONCURRENCY'] must be int, not float (2.0)."),
    ],
)
def test_build_settings__autostart_concurrency_is_a_positive_int(
    value: object, message: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        build_settings({"AUTOSTART_CONCURRENCY": value})

    assert str(caught.value) == message


def test_metrics_token__a_string_of_16_characters_or_more() -> None:
    assert build_settings({"METRICS_TOKEN": "x" * 16}).METRICS_TOKEN == "x" * 16
    assert build_settings({}).METRICS_TOKEN is None
    with pytest.raises(ConfigurationError, match="METRICS_TOKEN'\\] must be at least 16"):
        build_settings({"METRICS_TOKEN": "short"})
    with pytest.raises(ConfigurationError, match="METRICS_TOKEN"):
        build_settings({"METRICS_TOKEN": 1234567890123456789})


def test_secret_masking_settings__default_on_and_validated() -> None:
    assert build_settings({}).MASK_SECRET_ARGUMENTS is True
    assert build_settings({}).SECRET_ARGUMENT_NAMES == ()
    built = build_settings({"MASK_SECRET_ARGUMENTS": False, "SECRET_ARGUMENT_NAMES": ["pin"]})
    assert (built.MASK_SECRET_ARGUMENTS, built.SECRET_ARGUMENT_NAMES) == (False, ("pin",))
    with pytest.raises(ConfigurationError, match="MASK_SECRET_ARGUMENTS'\\] must be bool"):
        build_settings({"MASK_SECRET_ARGUMENTS": "no"})
    with pytest.raises(ConfigurationError, match="SECRET_ARGUMENT_NAMES'\\] must be list or"):
        build_settings({"SECRET_ARGUMENT_NAMES": "pin"})
    with pytest.raises(ConfigurationError, match=r"with letters in them.*\['', 42\]"):
        build_settings({"SECRET_ARGUMENT_NAMES": ["pin", "", 42]})
