"""Checks of the plain arguments every layer takes (ids, counts, timeouts, iterables):
refused with ``InvalidInput`` before anything is sent. Record fields are checked by
pydantic (``ims_repo.core.records``)."""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncIterable, Iterable, Mapping
from typing import Any

from pydantic import BaseModel
from pydantic_core import to_json

from ims_repo.core.errors import InvalidInput


def check_user_id(user_id: int | None) -> int | None:
    """``user_id`` if it is an int or None (the RLS context: a user, or nobody)."""
    if user_id is not None and (isinstance(user_id, bool) or not isinstance(user_id, int)):
        raise InvalidInput(f"user_id must be an int or None, not {type(user_id).__name__}")
    return user_id


def timeout_ms(seconds: float, name: str) -> int:
    """A timeout in seconds as PostgreSQL's whole milliseconds (at least 1, since 0 would
    mean "no timeout"); ``InvalidInput`` unless it is a positive, finite number."""
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, int | float)
        or not math.isfinite(seconds)
        or seconds <= 0
    ):
        raise InvalidInput(f"{name} must be a positive number of seconds, not {seconds!r}")
    return max(1, round(seconds * 1000))


def positive_int(value: Any, name: str) -> int:
    """``value`` if it is an int of 1 or more (a batch size, a count of connections)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInput(f"{name} must be a positive int, not {value!r}")
    return value


def iterable_of_items(values: Any, name: str) -> Any:
    """``values`` if it is an iterable (or async iterable) of items, not text, a mapping
    or one record."""
    if isinstance(values, str | bytes | Mapping | BaseModel) or not isinstance(
        values, Iterable | AsyncIterable
    ):
        raise InvalidInput(f"{name} must be an iterable of items, not {type(values).__name__}")
    return values


def as_list(values: Any, name: str) -> Any:
    """``values`` as a list, if it is a sequence-like iterable (not text or a mapping)."""
    if isinstance(values, str | bytes | Mapping) or not isinstance(values, Iterable):
        raise InvalidInput(f"{name} must be a sequence, not {type(values).__name__}")
    return list(values)


def unstorable(value: Any) -> str | None:
    """What in ``value`` (text, or lists and dicts of it) PostgreSQL cannot store:
    U+0000, and lone surrogates (not Unicode text, so not UTF-8); None when all is well.

    A list or dict is first serialised by pydantic-core (a crawl page's documents hold
    thousands of strings: walking them in Python cost more than the rest of the page's
    client work): JSON text that pydantic-core could produce is UTF-8, so it holds no lone
    surrogate, and without the escape ``\\u0000`` it holds no U+0000. Only a value that
    fails that test (or cannot be serialised) is walked, for the exact answer."""
    if isinstance(value, list | tuple | dict):
        # ValueError: PydanticSerializationError (a lone surrogate, a type it cannot write)
        with contextlib.suppress(ValueError):
            if b"\\u0000" not in to_json(value):
                return None
    return _walk(value)


def _walk(value: Any) -> str | None:
    if isinstance(value, str):
        if "\x00" in value:
            return "a NUL character (U+0000)"
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return "a lone surrogate (not valid Unicode text)"
        return None
    if isinstance(value, list | tuple):
        items: Iterable[Any] = value
    elif isinstance(value, dict):
        items = (part for pair in value.items() for part in pair)
    else:
        return None
    for item in items:
        problem = _walk(item)
        if problem:
            return problem
    return None
