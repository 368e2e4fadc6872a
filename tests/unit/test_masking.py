"""The rule for secret-looking names, and masking nested JSON values by it."""

import copy

import pytest

from taskmill.masking import MASK, is_secret_name, mask_secrets, name_words

SECRET_NAMES = [
    "password",
    "PASSWORD",
    "db_password",
    "passwd",
    "smtp_pass",
    "api_key",
    "apiKey",
    "APIKey",
    "api-key",
    "apikey",
    "key",
    "private_key",
    "privateKey",
    "aws_secret_access_key",
    "client_secret",
    "clientSecret",
    "token",
    "access_token",
    "X-Auth-Token",
    "auth",
    "Authorization",
    "credentials",
    "session",
    "sessionid",
    "csrftoken",
    "cookie",
    "webhook_signature",
    "key2",
]
PLAIN_NAMES = [
    "monkey",
    "keyboard",
    "tokenizer",
    "author",
    "passenger",
    "bypass",
    "secretary",
    "username",
    "email",
    "id",
    "turkey_count",
    "",
]


@pytest.mark.parametrize("name", SECRET_NAMES)
def test_is_secret_name__secret_words_anywhere_in_the_name(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize("name", PLAIN_NAMES)
def test_is_secret_name__whole_words_only(name: str) -> None:
    assert not is_secret_name(name)


def test_name_words__splits_at_separators_digits_and_case() -> None:
    assert name_words("clientSecret_v2") == ("client", "secret", "v")
    assert name_words("APIKey") == ("api", "key")
    assert name_words("X-Auth-Token") == ("x", "auth", "token")


def test_is_secret_name__extra_names_match_a_run_of_words() -> None:
    extra = [name_words("pin"), name_words("client_id")]

    assert is_secret_name("card_pin", extra)
    assert is_secret_name("clientId", extra)
    assert is_secret_name("oauth_client_id", extra)
    assert not is_secret_name("pinned", extra)
    assert not is_secret_name("client", extra)
    assert not is_secret_name("id_client", extra)


def test_mask_secrets__at_any_depth_in_dicts_and_lists_whatever_the_value() -> None:
    value = {
        "user": "ada",
        "password": "s3cret",
        "db": {"host": "h", "token": {"nested": "whole"}},
        "hosts": [{"name": "a", "apiKey": 42}, ["deeper", {"secret": None}]],
        "keys": ["k1", "k2"],
    }
    original = copy.deepcopy(value)

    masked = mask_secrets(value)

    assert masked == {
        "user": "ada",
        "password": MASK,
        "db": {"host": "h", "token": MASK},
        "hosts": [{"name": "a", "apiKey": MASK}, ["deeper", {"secret": MASK}]],
        "keys": MASK,
    }
    assert value == original  # a copy: the stored value is untouched


def test_mask_secrets__positional_values_have_no_name() -> None:
    assert mask_secrets(["s3cret", {"password": "x"}]) == ["s3cret", {"password": MASK}]
