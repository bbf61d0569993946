"""Turn ``find(**filters, order_by=[...])`` arguments into SQL, from whitelists only.

Each repository declares which columns can be filtered and sorted. A filter's name picks
a column and an operator from that declaration; the value is always a bound parameter,
never SQL. Anything not declared is refused with ``InvalidInput`` before SQL is built.

Filter names, for a declared column ``c``:

==================  =============================================  ==================
name                condition                                      for
==================  =============================================  ==================
``c=v``             ``c = v``                                      every column
``c_not=v``         ``c <> v`` (rows where c is NULL never match)  every column
``c_in=[v, …]``     ``c = ANY(values)`` (an empty list matches     every column
                    nothing)
``c_like=p``        ``c LIKE p`` (SQL pattern: ``%``, ``_``)       text columns
``has_c=True``      ``c IS NOT NULL`` (``False``: ``IS NULL``)     nullable columns
``c_from=t``        ``c >= t`` (inclusive)                         timestamps
``c_to=t``          ``c < t`` (exclusive, so ranges tile)          timestamps
==================  =============================================  ==================

This module does no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property
from typing import Any

from pydantic import TypeAdapter, ValidationError

from ims_repo.errors import InvalidInput
from ims_repo.loader import Fragment


@dataclass(frozen=True)
class Column:
    """A filterable column: its SQL name and the Python type its values must have."""

    type: Any
    nullable: bool = False
    sortable: bool = True

    @cached_property
    def adapter(self) -> TypeAdapter[Any]:
        return TypeAdapter(self.type)

    @cached_property
    def list_adapter(self) -> TypeAdapter[Any]:
        return TypeAdapter(list[self.type])  # type: ignore[name-defined]

    @property
    def is_text(self) -> bool:
        return self.type is str

    @property
    def is_time(self) -> bool:
        return self.type in (datetime, date)


@dataclass(frozen=True)
class FilterSet:
    """The filters and sort keys one repository's ``find`` accepts.

    ``columns`` maps column names (as written in the table; they are never taken from
    input) to their declaration; ``key`` is the primary key, the default order and the
    tie-breaker that makes pages stable.
    """

    columns: Mapping[str, Column]
    key: str
    _operators: dict[str, tuple[str, str]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        operators: dict[str, tuple[str, str]] = {}
        for name, column in self.columns.items():
            operators[name] = (name, "eq")
            operators[f"{name}_not"] = (name, "not")
            operators[f"{name}_in"] = (name, "in")
            if column.is_text:
                operators[f"{name}_like"] = (name, "like")
            if column.nullable:
                operators[f"has_{name}"] = (name, "has")
            if column.is_time:
                operators[f"{name}_from"] = (name, "from")
                operators[f"{name}_to"] = (name, "to")
        object.__setattr__(self, "_operators", operators)

    @property
    def filter_names(self) -> list[str]:
        return sorted(self._operators)

    @property
    def order_keys(self) -> list[str]:
        return sorted(name for name, column in self.columns.items() if column.sortable)

    def where(self, filters: Mapping[str, Any]) -> Fragment:
        """The ANDed conditions for ``filters`` (``TRUE`` when there are none)."""
        conditions: list[str] = []
        params: dict[str, Any] = {}
        for name in sorted(filters):
            if name not in self._operators:
                raise InvalidInput(
                    f"unknown filter {name!r}; accepted: {', '.join(self.filter_names)}"
                )
            column_name, operator = self._operators[name]
            column = self.columns[column_name]
            placeholder = f"%(f_{name})s"
            value = filters[name]
            if operator == "in" and isinstance(value, tuple | set | frozenset):
                value = list(value)
            value = _check(name, value, _adapter_for(column, operator))
            if operator == "has":
                conditions.append(f"{column_name} IS {'NOT ' if value else ''}NULL")
                continue
            params[f"f_{name}"] = value
            conditions.append(_CONDITIONS[operator].format(column=column_name, value=placeholder))
        return Fragment(" AND ".join(conditions) or "TRUE", params)

    def order_by(self, keys: Sequence[str] | None) -> Fragment:
        """``ORDER BY`` items for ``keys`` (``-key`` descending), ending with the key."""
        if isinstance(keys, str):
            keys = [keys]
        items: list[str] = []
        used: set[str] = set()
        for key in keys or ():
            if not isinstance(key, str):
                raise InvalidInput(f"order_by keys must be strings, not {type(key).__name__}")
            name = key.removeprefix("-")
            column = self.columns.get(name)
            if column is None or not column.sortable or name in used:
                reason = "repeated" if name in used else "unknown"
                raise InvalidInput(
                    f"{reason} order_by key {key!r}; accepted: {', '.join(self.order_keys)} "
                    "(prefix '-' for descending)"
                )
            used.add(name)
            items.append(f"{name} DESC" if key.startswith("-") else name)
        if self.key not in used:
            items.append(self.key)
        return Fragment(", ".join(items))


_CONDITIONS = {
    "eq": "{column} = {value}",
    "not": "{column} <> {value}",
    "in": "{column} = ANY({value})",
    "like": "{column} LIKE {value}",
    "from": "{column} >= {value}",
    "to": "{column} < {value}",
}

_BOOL = TypeAdapter(bool)
_TEXT = TypeAdapter(str)


def _adapter_for(column: Column, operator: str) -> TypeAdapter[Any]:
    if operator == "in":
        return column.list_adapter
    if operator == "has":
        return _BOOL
    if operator == "like":
        return _TEXT
    return column.adapter


def _check(name: str, value: Any, adapter: TypeAdapter[Any]) -> Any:
    if value is None:
        raise InvalidInput(f"filter {name!r} got None; use has_<column>=False to find NULLs")
    try:
        checked = adapter.validate_python(value, strict=True)
    except ValidationError as error:
        problem = error.errors(include_url=False)[0]["msg"]
        raise InvalidInput(f"filter {name!r}: {problem}") from error
    for text in checked if isinstance(checked, list) else [checked]:
        if isinstance(text, str) and "\x00" in text:
            raise InvalidInput(f"filter {name!r}: text contains a NUL character (U+0000)")
    if name.endswith("_like") and _ends_with_escape(checked):
        raise InvalidInput(
            f"filter {name!r}: a LIKE pattern cannot end with the escape character \\ "
            "(write \\\\ for a literal backslash)"
        )
    return checked


def _ends_with_escape(pattern: str) -> bool:
    """True when the pattern ends in an unpaired backslash, which LIKE refuses."""
    trailing = len(pattern) - len(pattern.rstrip("\\"))
    return trailing % 2 == 1
