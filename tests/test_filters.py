"""Filter and order building: whitelists only, values always bound."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ims_repo.core.filters import Column, FilterSet
from ims_repo.errors import InvalidInput

SESSIONS = FilterSet(
    columns={
        "session_id": Column(int),
        "product": Column(str),
        "status": Column(str),
        "data_path": Column(str, nullable=True),
        "started_at": Column(datetime, nullable=True),
    },
    key="session_id",
)
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_every_form_becomes_a_condition_with_bound_values() -> None:
    where = SESSIONS.where(
        {
            "status": "completed",
            "status_not": "failed",
            "status_in": ("running", "completed"),
            "product_like": "Open%",
            "has_data_path": True,
            "started_at_from": T0,
            "started_at_to": T0,
        }
    )
    assert where.sql == (
        "data_path IS NOT NULL AND product LIKE %(f_product_like)s AND "
        "started_at >= %(f_started_at_from)s AND started_at < %(f_started_at_to)s AND "
        "status = %(f_status)s AND status = ANY(%(f_status_in)s) AND status <> %(f_status_not)s"
    )
    assert where.params["f_status_in"] == ["running", "completed"]
    assert where.params["f_product_like"] == "Open%"


def test_no_filters_is_true_and_has_false_is_null() -> None:
    assert SESSIONS.where({}).sql == "TRUE"
    assert SESSIONS.where({"has_data_path": False}).sql == "data_path IS NULL"


@pytest.mark.parametrize(
    "filters, message",
    [
        ({"statuz": "x"}, "unknown filter 'statuz'"),
        ({"status; DROP TABLE x": "x"}, "unknown filter"),
        ({"session_id_like": "1%"}, "unknown filter"),  # LIKE only on text
        ({"has_product": True}, "unknown filter"),  # product is NOT NULL
        ({"status": None}, "use has_<column>=False"),
        ({"session_id": "1"}, "filter 'session_id'"),  # no silent coercion
        ({"session_id": True}, "filter 'session_id'"),
        ({"status_in": "running"}, "filter 'status_in'"),  # a string is not a list
        ({"started_at_from": "2026-01-01"}, "filter 'started_at_from'"),
        ({"product": "a\x00b"}, "NUL"),
        ({"status_in": ["ok", "a\x00"]}, "NUL"),
    ],
)
def test_bad_filters_are_refused(filters: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        SESSIONS.where(filters)


def test_order_by_whitelist_descending_and_key_as_tie_breaker() -> None:
    assert SESSIONS.order_by(None).sql == "session_id"
    assert (
        SESSIONS.order_by(["product", "-started_at"]).sql == "product, started_at DESC, session_id"
    )
    assert SESSIONS.order_by("-session_id").sql == "session_id DESC"


@pytest.mark.parametrize("keys", [["nope"], ["product; DROP TABLE x"], ["product", "product"], [1]])
def test_bad_order_keys_are_refused(keys: list[object]) -> None:
    with pytest.raises(InvalidInput, match="order_by"):
        SESSIONS.order_by(keys)  # type: ignore[arg-type]
