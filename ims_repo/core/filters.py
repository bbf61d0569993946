"""Turn ``find(**filters, order_by=[...])`` arguments into SQL, from whitelists only.

Each repository declares which columns can be filtered and sorted. A filter's name picks
a column and an operator from that declaration; the value is always a bound parameter,
never SQL. Anything not declared is refused with ``InvalidInput`` before SQL is built.

Filter names, for a declared column ``c`` (each repository's ``find`` docstring lists
its columns and the names they take):

- ``c=v``: ``c = v`` (every column)
- ``c_not=v``: ``c <> v``; rows where c is NULL never match (every column)
- ``c_in=[v, …]``: ``c = ANY(values)``; an empty list matches nothing (every column)
- ``c_like=p``: ``c LIKE p``, an SQL pattern (``%``, ``_``) (text columns)
- ``has_c=True``: ``c IS NOT NULL`` (``False``: ``IS NULL``) (nullable columns)
- ``c_from=t``: ``c >= t``, inclusive (timestamps)
- ``c_to=t``: ``c < t``, exclusive, so ranges tile (timestamps)

Keyset pages: ``FilterSet.after(order_by, last)`` is the condition "the row comes after
``last`` in that order", for ``find(after=…)``; see ``After``.

This module does no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from ims_repo.core.errors import InvalidInput
from ims_repo.core.loader import Fragment


@dataclass(frozen=True)
class Column:
    """A filterable column: its SQL name and the Python type its values must have."""

    type: Any
    """The Python type a value must have, checked strictly (no coercion)."""
    nullable: bool = False
    """The column may be NULL: it takes ``has_<column>=True/False``."""
    sortable: bool = True
    """The column is an ``order_by`` key."""

    @cached_property
    def adapter(self) -> TypeAdapter[Any]:
        """Validates one value."""
        return TypeAdapter(self.type)

    @cached_property
    def list_adapter(self) -> TypeAdapter[Any]:
        """Validates the list of an ``_in`` filter."""
        return TypeAdapter(list[self.type])  # type: ignore[name-defined]

    @property
    def is_text(self) -> bool:
        """A text column: it takes ``<column>_like``."""
        return self.type is str

    @property
    def is_time(self) -> bool:
        """A timestamp or date column: it takes ``<column>_from`` and ``<column>_to``."""
        return self.type in (datetime, date)


@dataclass(frozen=True)
class FilterSet:
    """The filters and sort keys one repository's ``find`` accepts.

    ``columns`` maps column names (as written in the table; they are never taken from
    input) to their declaration; ``key`` is the primary key, the default order and the
    tie-breaker that makes pages stable.
    """

    columns: Mapping[str, Column]
    """The filterable columns by name."""
    key: str
    """The primary key: the default order, and the tie-breaker ending every order."""
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
        """Every filter name ``find`` accepts, sorted."""
        return sorted(self._operators)

    @property
    def order_keys(self) -> list[str]:
        """Every ``order_by`` key (without the ``-``), sorted."""
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
        items = [f"{name} DESC" if descending else name for name, descending in self.sort(keys)]
        return Fragment(", ".join(items))

    def sort(self, keys: Sequence[str] | None) -> list[tuple[str, bool]]:
        """``keys`` checked against the whitelist, as ``(column, descending)`` pairs; the
        key is appended when ``keys`` leave it out, so the order is total (unique)."""
        if isinstance(keys, str):
            keys = [keys]
        items: list[tuple[str, bool]] = []
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
            items.append((name, key.startswith("-")))
        if self.key not in used:
            items.append((self.key, False))
        return items

    def after(self, keys: Sequence[str] | None, last: After) -> Fragment:
        """The condition "the row comes after ``last``" in the order ``keys`` give
        (``order_by``'s order: PostgreSQL's default NULL placement, NULLS LAST
        ascending and NULLS FIRST descending), for the next keyset page.

        Row comparison ``(a, b) > (x, y)`` is right only when every key goes the same way
        and none is NULL, so the condition is built key by key: at or after ``x`` on
        ``a``, and either not equal to ``x`` or after ``last`` on the following keys:
        ``a <= x AND (a <> x OR b > y)`` for ``-a, b``. The range on the first key is what
        an index on the order starts its scan at; written once (not again inside an
        ``OR``), it also keeps the planner's row estimate right, so the planner keeps
        that ordered scan. A NULL in ``last`` changes the SQL's shape (``IS NULL``, never
        ``= NULL``), not a value. Values are bound, never SQL.
        """
        order = self.sort(keys)
        values = self._after_values(order, last)
        steps = [
            _Step(name, descending, self.columns[name].nullable, values[name])
            for name, descending in order
        ]
        params = {step.param: step.value for step in steps if step.value is not None}
        return Fragment(_after(steps) or "FALSE", params)

    def _after_values(self, order: list[tuple[str, bool]], last: After) -> dict[str, Any]:
        """The sort key values of ``last``, checked like filter values (no coercion);
        None only for a nullable column."""
        names = [name for name, _ in order]
        if isinstance(last, BaseModel):
            missing = [name for name in names if name not in type(last).model_fields]
            if missing:
                raise InvalidInput(
                    f"after: a {type(last).__name__} has no {', '.join(missing)}; pass the "
                    f"last row of the previous page, or a mapping of {', '.join(names)}"
                )
            given: Mapping[str, Any] = {name: getattr(last, name) for name in names}
        elif isinstance(last, Mapping):
            if set(last) != set(names):
                raise InvalidInput(
                    f"after must give exactly the sort keys {', '.join(names)} "
                    f"(order_by with the key appended), not {', '.join(map(str, last)) or 'none'}"
                )
            given = last
        else:
            raise InvalidInput(
                "after must be the last row of the previous page (a record) or a mapping of "
                f"its sort keys, not {type(last).__name__}"
            )
        return {name: self._after_value(name, given[name]) for name in names}

    def _after_value(self, name: str, value: Any) -> Any:
        column = self.columns[name]
        if value is None:
            if not column.nullable:
                raise InvalidInput(f"after: {name} cannot be None (the column is NOT NULL)")
            return None
        try:
            return column.adapter.validate_python(value, strict=True)
        except ValidationError as error:
            problem = error.errors(include_url=False)[0]["msg"]
            raise InvalidInput(f"after: {name}: {problem}") from error


After = BaseModel | Mapping[str, Any]
"""Where a keyset page starts (``find(after=…)``): the last row of the previous page, as
``find`` returned it (simplest: ``after=page[-1]``), or a mapping holding exactly that
row's values of the sort keys (``order_by``'s columns and the key, which ends every
order), e.g. ``{"issue_updated_at": t, "issue_pk": 42}``. The next page holds the rows
that sort after it, so rows added or removed meanwhile neither repeat nor shift a page."""


def _after(steps: Sequence[_Step], *, nested: bool = False) -> str | None:
    """SQL for "after the values of ``steps``" in their order (None: no row is);
    ``nested`` parenthesizes an ``AND`` for use inside an ``OR``."""
    first, rest = steps[0], steps[1:]
    if not rest:
        return first.beyond()
    later = _after(rest, nested=True)
    either = [part for part in (first.differs(), later) if part is not None]
    if not either:
        return None
    condition = either[0] if len(either) == 1 else f"({' OR '.join(either)})"
    bound = first.bound()
    if bound is None:
        return condition
    return f"({bound} AND {condition})" if nested else f"{bound} AND {condition}"


@dataclass(frozen=True)
class _Step:
    """One sort key of a keyset condition, with the last row's value for it."""

    name: str
    descending: bool
    nullable: bool
    value: Any

    @property
    def param(self) -> str:
        return f"k_{self.name}"

    def beyond(self) -> str | None:
        """Rows strictly after the value in this key's order (None: no row is)."""
        if self.value is None:  # NULLs sort last ascending, first descending
            return f"{self.name} IS NOT NULL" if self.descending else None
        return self._or_null(f"{self.name} {'<' if self.descending else '>'} {self._value}")

    def bound(self) -> str | None:
        """Rows at or after the value (None: every row is)."""
        if self.value is None:
            return None if self.descending else f"{self.name} IS NULL"
        return self._or_null(f"{self.name} {'<=' if self.descending else '>='} {self._value}")

    def differs(self) -> str | None:
        """Rows whose value is not this one (None: no row of ``bound`` differs)."""
        if self.value is None:
            return f"{self.name} IS NOT NULL" if self.descending else None
        return self._or_null(f"{self.name} <> {self._value}")

    @property
    def _value(self) -> str:
        return f"%({self.param})s"

    def _or_null(self, condition: str) -> str:
        """``condition``, also true for NULL where NULLs sort after every value."""
        if self.nullable and not self.descending:
            return f"({condition} OR {self.name} IS NULL)"
        return condition


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
