"""``core.inputs.unstorable``: the guard every statement's parameters pass before they are
sent. Its fast path (pydantic-core's JSON text of a list or dict) must answer exactly as
walking the value does."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ims_repo.core.inputs import _walk, unstorable

NUL = "a NUL character (U+0000)"
SURROGATE = "a lone surrogate (not valid Unicode text)"

# Text with what matters here: U+0000, lone surrogates, backslashes and the letters of an
# escape ("\\u0000" typed as six characters is storable), non-ASCII.
TEXT = st.text(alphabet=st.sampled_from(["\x00", "\ud800", "\\", "u", "0", "a", "é", "시"]))
LEAVES = TEXT | st.integers() | st.floats(allow_nan=False) | st.booleans() | st.none()
VALUES = st.recursive(
    LEAVES,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(TEXT | st.integers(), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)  # no deadline: CI machines are noisy
@given(VALUES)
def test_the_fast_path_answers_as_the_walk(value: Any) -> None:
    assert unstorable(value) == _walk(value)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (["\\u0000"], None),  # six characters, storable
        ({"k": ["ok", {"n\x00": 1}]}, NUL),  # in a nested key
        ([{"a": "\ud800"}], SURROGATE),
        ([object(), "x\x00"], NUL),  # a type JSON cannot write: walked
        ([b"\x00"], None),  # bytes are not text
        ({"raw": {"deep": [[["fine", "é", "시간"]]]}}, None),
    ],
)
def test_what_is_refused(value: Any, problem: str | None) -> None:
    assert unstorable(value) == problem
