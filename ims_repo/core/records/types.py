"""Field types shared by the records: text PostgreSQL can store, JSON objects, enums.

Text is kept verbatim (no stripping or normalisation). PostgreSQL cannot store U+0000 in
``text`` or ``jsonb``, so it is refused here, before any SQL runs, with a clear message.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, TypeAdapter, ValidationError
from pydantic_core import to_json

from ims_repo.core.errors import InvalidInput

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")

_NUL = "\x00"


def _no_nul(value: str) -> str:
    if _NUL in value:
        raise ValueError("text contains a NUL character (U+0000), which PostgreSQL cannot store")
    return value


def _json_without_nul(value: Any) -> Any:
    """``value``, refused if a string or key in it holds U+0000.

    JSON escapes U+0000 as ``\\u0000``, so a value whose JSON text (pydantic-core's, a
    third of the cost of walking the value in Python) lacks that escape has none; only
    the rare other value (one that also holds a backslash before ``u0000``, or that
    pydantic-core cannot serialise) is walked."""
    try:
        if b"\\u0000" not in to_json(value):
            return value
    except ValueError:  # PydanticSerializationError: walk it, as any value
        pass
    _walk_without_nul(value)
    return value


def _walk_without_nul(value: Any) -> None:
    if isinstance(value, str):
        _no_nul(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            _no_nul(str(key))
            _walk_without_nul(item)
    elif isinstance(value, list):
        for item in value:
            _walk_without_nul(item)


Text = Annotated[str, AfterValidator(_no_nul)]
"""Any text PostgreSQL can store, kept exactly as given."""

JsonObject = Annotated[dict[str, Any], AfterValidator(_json_without_nul)]
"""A JSON object for a ``jsonb`` column."""

INDEXED_TEXT_MAX = 500
"""Longest text accepted in a column with a B-tree index (usernames, issue ids, products):
PostgreSQL refuses index entries over ~2.7 kB (500 characters of 4-byte UTF-8 fit), so
longer keys are refused up front."""

INT4_MAX = 2**31 - 1
"""Largest value of an ``integer`` column (a crawl duration in milliseconds, say)."""

UserRole = Literal["admin", "user"]
SessionStatus = Literal["pending", "running", "completed", "failed", "cancelled"]
ErrorSeverity = Literal["info", "warning", "error", "critical"]

# Records read from the database: immutable, and built only from known columns.
RECORD_CONFIG = ConfigDict(frozen=True, extra="forbid")
# Input to a write: unknown fields are refused rather than silently dropped.
INPUT_CONFIG = ConfigDict(extra="forbid", validate_default=True)


def validate_input(model: type[M], data: M | Mapping[str, Any]) -> M:
    """``data`` as a valid ``model``; a mapping is validated here (``InvalidInput``)."""
    if isinstance(data, model):
        return data
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise InvalidInput(f"{model.__name__}: {_summary(error)}") from error


def validate_all(model: type[M], items: Iterable[Any], name: str) -> list[M]:
    """Every item of ``items`` as a valid ``model`` (instances pass as they are).

    For the bulk writes: the whole batch is checked before any SQL is sent, and the
    ``InvalidInput`` of a bad item names its position (``comments[3]: content: …``).
    """
    if isinstance(items, str | bytes | Mapping | BaseModel) or not isinstance(items, Iterable):
        raise InvalidInput(f"{name} must be an iterable of items, not {type(items).__name__}")
    checked: list[M] = []
    for index, item in enumerate(items):
        try:
            checked.append(validate_input(model, item))
        except InvalidInput as error:
            raise InvalidInput(f"{name}[{index}]: {error}") from error
    return checked


def split_create(
    name: str, issue_or_new: int | M | Mapping[str, Any], new: M | Mapping[str, Any] | None
) -> tuple[int | None, M | Mapping[str, Any]]:
    """The arguments of a child's ``create(record)`` or ``create(issue_pk, new)``: the
    issue the call names (None for the first form) and the record."""
    if new is None:
        if isinstance(issue_or_new, int):
            raise InvalidInput(f"{name}: create({issue_or_new}) names an issue but no record")
        return None, issue_or_new
    if not isinstance(issue_or_new, int):
        raise InvalidInput(
            f"{name}: issue_pk: must be an integer, not {type(issue_or_new).__name__}"
        )
    return issue_or_new, new


def issue_of(item: BaseModel, issue_pk: int | None, where: str) -> int:
    """The issue a child record (comment, history entry) is for.

    ``issue_pk`` is the one the call names (``create(issue_pk, new)``, ``add_many``), or
    None when the record must carry its own. A record naming a different issue than the
    call is refused, before any SQL runs.
    """
    own = getattr(item, "issue_pk", None)
    if issue_pk is None:
        if own is None:
            raise InvalidInput(
                f"{where}: issue_pk: Field required (give it in the record, or call "
                "create(issue_pk, record))"
            )
        return int(own)
    if own is not None and own != issue_pk:
        raise InvalidInput(
            f"{where}: issue_pk: {own} is not issue {issue_pk}, which the call names"
        )
    return issue_pk


def validate_value(adapter: TypeAdapter[T], value: Any, name: str) -> T:
    """``value`` checked strictly against ``adapter`` (no coercion: "1" is not 1), for
    arguments that are not records; ``InvalidInput`` naming the argument."""
    try:
        return adapter.validate_python(value, strict=True)
    except ValidationError as error:
        raise InvalidInput(f"{name}: {_summary(error)}") from error


def validate_changes(
    model: type[BaseModel], changes: Mapping[str, Any], *, allowed: Collection[str]
) -> dict[str, Any]:
    """Check the fields an ``update`` changes against the rules of the ``New…`` model.

    Only the fields given are checked and returned, so fields left out keep their stored
    value; a field outside ``allowed`` (a key, or the role) is refused.
    """
    refused = set(changes) - set(allowed)
    if refused:
        raise InvalidInput(
            f"cannot update {', '.join(sorted(refused))}; updatable: {', '.join(sorted(allowed))}"
        )
    if not changes:
        raise InvalidInput("update needs at least one field to change")
    holder = model.model_construct()
    try:
        for name, value in changes.items():
            model.__pydantic_validator__.validate_assignment(holder, name, value)
    except ValidationError as error:
        raise InvalidInput(f"{model.__name__}: {_summary(error)}") from error
    return {name: getattr(holder, name) for name in changes}


def _summary(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in item['loc']) or 'value'}: {item['msg']}"
        for item in error.errors(include_url=False)
    )
