"""Field types shared by the records: text PostgreSQL can store, JSON objects, enums.

Text is kept verbatim (no stripping or normalisation). PostgreSQL cannot store U+0000 in
``text`` or ``jsonb``, so it is refused here, before any SQL runs, with a clear message.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

from ims_repo.errors import InvalidInput

M = TypeVar("M", bound=BaseModel)

_NUL = "\x00"


def _no_nul(value: str) -> str:
    if _NUL in value:
        raise ValueError("text contains a NUL character (U+0000), which PostgreSQL cannot store")
    return value


def _json_without_nul(value: Any) -> Any:
    if isinstance(value, str):
        _no_nul(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            _no_nul(str(key))
            _json_without_nul(item)
    elif isinstance(value, list):
        for item in value:
            _json_without_nul(item)
    return value


Text = Annotated[str, AfterValidator(_no_nul)]
"""Any text PostgreSQL can store, kept exactly as given."""

JsonObject = Annotated[dict[str, Any], AfterValidator(_json_without_nul)]
"""A JSON object for a ``jsonb`` column."""

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
