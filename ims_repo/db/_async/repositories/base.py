"""What every repository shares: its session, and the ``find``/``update`` plumbing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from psycopg.types.json import Jsonb
from pydantic import BaseModel

from ims_repo.core.errors import InvalidInput, NotFound
from ims_repo.core.filters import After, FilterSet
from ims_repo.core.loader import BoundStatement, Fragment, Statement
from ims_repo.db._async.runner import AsyncRunner

R = TypeVar("R", bound=BaseModel)


class AsyncRepository:
    """Base of the per-table repositories: typed methods over named statements."""

    def __init__(self, session: AsyncRunner) -> None:
        self._session = session

    async def _update(
        self,
        statement: Statement,
        record: type[R],
        table: str,
        key: tuple[str, Any],
        changes: Mapping[str, Any],
    ) -> R:
        """Run an ``update`` statement (the key and a ``:changes`` JSON object) and
        return the changed row; ``NotFound`` when no row the context can see has the key.
        """
        name, value = key
        updated = await self._session.fetch_one(
            statement.bind({name: value, "changes": changes_document(changes)}), record
        )
        if updated is None:
            raise NotFound(
                f"ims.{table} has no visible {name}={value}", table=table, key=str(value)
            )
        return updated


def bind_find(
    statement: Statement,
    filter_set: FilterSet,
    filters: Mapping[str, Any],
    order_by: Sequence[str] | None,
    limit: int | None,
    offset: int,
    after: After | None = None,
) -> BoundStatement:
    """Bind a ``find``-shaped statement: whitelisted filters, order, one page.

    ``after`` (the last row of the previous page, see ``ims_repo.core.filters.After``) makes
    it a keyset page: the rows after that one, found through an index on the order as
    fast at any depth as the first page. It goes into the ``{filters}`` slot, ANDed
    with the filters; an ``offset`` beside it is refused (one or the other, not both).
    """
    _check_page(limit, offset)
    conditions = filter_set.where(filters)
    if after is not None:
        if offset:
            raise InvalidInput("after and offset cannot be combined: page with one or the other")
        keyset = filter_set.after(order_by, after)
        conditions = Fragment(
            f"{conditions.sql} AND ({keyset.sql})", {**conditions.params, **keyset.params}
        )
    return statement.bind(
        {"limit": limit, "offset": offset},
        filters=conditions,
        order_by=filter_set.order_by(order_by),
    )


def changes_document(changes: Mapping[str, Any]) -> Jsonb:
    """The validated changes of an ``update`` as the JSON object its SQL reads.

    ``jsonb_populate_record`` in the statement keeps every column the object leaves out.
    """
    return Jsonb({name: _jsonable(value) for name, value in changes.items()})


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _check_page(limit: int | None, offset: int) -> None:
    for name, value in (("limit", limit), ("offset", offset)):
        if value is None and name == "limit":
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidInput(f"{name} must be a non-negative int, not {value!r}")
