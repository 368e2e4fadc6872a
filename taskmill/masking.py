"""Masking argument values whose name looks secret, for display only (admin, dashboard, CLI).

The rule: a name is split into words (at `_`, `-`, `.`, spaces, digits and camelCase
boundaries, then lowercased); it is secret when its words contain one of SECRET_WORDS, or a
run of words equal to an extra name from TASKMILL["SECRET_ARGUMENT_NAMES"]. Whole words only,
so `monkey`, `keyboard` and `tokenizer` are not secret while `api_key`, `apiKey` and
`X-Auth-Token` are. Stored rows and the values a task receives are never changed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Final

MASK: Final = "********"

# Words that make a name secret wherever they stand in it. Compounds written as one word
# (`apikey`, `passwd`) are listed too, since a name without separators is one word.
SECRET_WORDS: Final = frozenset(
    {
        "password",
        "passwd",
        "passphrase",
        "pwd",
        "pass",
        "secret",
        "secrets",
        "token",
        "tokens",
        "key",
        "keys",
        "apikey",
        "accesskey",
        "secretkey",
        "privatekey",
        "auth",
        "authorization",
        "authtoken",
        "accesstoken",
        "refreshtoken",
        "csrftoken",
        "credential",
        "credentials",
        "session",
        "sessionid",
        "cookie",
        "cookies",
        "signature",
    }
)

# An acronym before a word (APIKey -> API, Key), a capitalised or lowercase word, an acronym.
_WORD: Final = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+")


def name_words(name: str) -> tuple[str, ...]:
    """Split a name into lowercase words: `clientSecret_v2` -> ("client", "secret", "v")."""
    return tuple(word.lower() for word in _WORD.findall(name))


def is_secret_name(name: str, extra: Iterable[tuple[str, ...]] = ()) -> bool:
    """Tell whether an argument or dict key named `name` holds a secret.

    `extra` holds more names, each as its words (name_words of an entry of
    SECRET_ARGUMENT_NAMES); a name matches when those words appear in it in a row.
    """
    words = name_words(name)
    if any(word in SECRET_WORDS for word in words):
        return True
    return any(_contains_run(words, run) for run in extra if run)


def _contains_run(words: tuple[str, ...], run: tuple[str, ...]) -> bool:
    size = len(run)
    return any(words[start : start + size] == run for start in range(len(words) - size + 1))


def mask_secrets(value: Any, extra: Iterable[tuple[str, ...]] = ()) -> Any:
    """Return a copy of a JSON value with the value of every secret-named key replaced by MASK.

    Walks dicts and lists at any depth; a masked value is replaced whole, whatever its type,
    so neither its length nor its shape shows.
    """
    runs = tuple(extra)
    if isinstance(value, dict):
        return {
            key: MASK if is_secret_name(str(key), runs) else mask_secrets(item, runs)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [mask_secrets(item, runs) for item in value]
    return value


def shown_arguments(value: Any) -> Any:
    """Return args or kwargs as Taskmill shows them: masked unless the settings turn it off."""
    from .conf import get_settings

    settings = get_settings()
    if not settings.MASK_SECRET_ARGUMENTS:
        return value
    extra = (name_words(name) for name in settings.SECRET_ARGUMENT_NAMES)
    return mask_secrets(value, extra)
