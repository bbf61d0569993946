"""How ``upsert_many`` turns one batch of crawled items into rows for its two COPYs.

A batch goes to the server in two steps (``queries/issues.sql``):

1. the *digest* of every item (``item_digest``), COPYed as ``(issue_id, digest,
   occurrences)``; the server settles every item whose digest equals the one stored
   with its issue (``crawl_unchanged``): only the crawl bookkeeping moves;
2. the other items, validated as ``NewIssue`` and merged per ``issue_id``, COPYed in
   full and written by ``upsert_staged``.

A re-crawl that finds nothing changed therefore neither validates nor sends its items:
computing a digest costs about half of validating an item, and the server compares 16
bytes instead of the whole issue.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from functools import lru_cache
from operator import itemgetter
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic_core import to_json

from ims_repo.core.errors import InvalidInput
from ims_repo.core.records import NewIssue, UpsertResult
from ims_repo.core.records.types import validate_input

DIGEST_VERSION = b"ims_repo NewIssue digest 1"
"""Keys the digest. Change it whenever ``NewIssue`` validates differently: every stored
digest then stops matching, and the next re-crawl of each issue takes the full path once."""

_PLAIN_VALUES = frozenset({str, int, float, bool, type(None), datetime, dict, list})
"""Classes of the values a mapping item may have for its digest to be trusted (exact
classes: a subclass of ``str`` could validate differently from its JSON form)."""

STAGED_FIELDS = (
    "issue_id",
    "title",
    "description",
    "product",
    "module",
    "version",
    "status",
    "priority",
    "severity",
    "reporter",
    "assignee",
    "issue_created_at",
    "issue_updated_at",
    "url",
    "raw_data",
)
"""The fields of a staged row, in the column order of ``copy_upsert_stage`` (followed by
``set_fields``, ``occurrences`` and ``content_hash``)."""
assert set(STAGED_FIELDS) == set(NewIssue.model_fields), "staged fields != NewIssue"
assert STAGED_FIELDS[-1] == "raw_data"  # sent last, wrapped as JSON
_STAGED_VALUES = itemgetter(*STAGED_FIELDS[:-1])
_ALL_FIELDS = frozenset(STAGED_FIELDS)
_TIME_POSITIONS = (STAGED_FIELDS.index("issue_created_at"), STAGED_FIELDS.index("issue_updated_at"))
"""Where the staged values hold times (the fields of type ``datetime``)."""

STAGE_TYPES = (
    *["text"] * 11,
    "timestamptz",
    "timestamptz",
    "text",
    "jsonb",
    "text[]",
    "int4",
    "bytea",
)
"""PostgreSQL types of the staged columns, for the binary COPY."""
assert len(STAGE_TYPES) == len(STAGED_FIELDS) + 3

HASH_TYPES = ("text", "bytea", "int4")
"""PostgreSQL types of the digest stage's columns (issue_id, digest, occurrences)."""


def item_digest(item: Any) -> tuple[str, bytes] | None:
    """The ``issue_id`` and digest of a crawled item as received, or None when the item
    cannot be recognised by its digest (it is then validated and sent in full).

    The digest covers the JSON form of exactly the fields the item gives (a mapping's
    keys, a record's set fields; in name order, so a dict and a record of the same fields
    agree), so two items with one digest store the same content on the same stored row.
    An item whose JSON form equals the stored one's is taken as unchanged without being
    validated again: it was valid when it was stored.
    """
    if isinstance(item, NewIssue):
        fields_set = item.model_fields_set
        given = {name: value for name, value in item.__dict__.items() if name in fields_set}
    elif type(item) is dict:
        given = item
        if not _PLAIN_VALUES.issuperset(map(type, given.values())):
            return None
    else:
        return None
    issue_id = given.get("issue_id")
    if type(issue_id) is not str:
        return None
    try:  # the fields in name order, whatever order they came in
        document = to_json({name: given[name] for name in _name_order(tuple(given))})
    except ValueError:  # pydantic_core cannot serialise a value: validation will say why
        return None
    digest = _KEYED.copy()
    digest.update(document)
    return issue_id, digest.digest()


_KEYED = hashlib.blake2b(digest_size=16, key=DIGEST_VERSION)
"""The keyed hash every digest starts from (copied: the key is set up once)."""


@lru_cache(maxsize=64)
def _name_order(names: tuple[str, ...]) -> tuple[str, ...]:
    """``names`` sorted; a crawler's items come with one or a few key orders."""
    return tuple(sorted(names))


@dataclass
class Batch:
    """One batch of items with their positions in the caller's iterable (for the
    position an ``InvalidInput`` names)."""

    items: list[Any]
    positions: Sequence[int]
    digests: dict[str, list[Any]] = field(default_factory=dict)
    """issue_id -> [digest or None when its items differ or cannot be digested, count]"""
    unnamed: int = 0
    """Items without a text ``issue_id`` (validation refuses them in ``stage_rows``)."""

    def __post_init__(self) -> None:
        for item in self.items:
            identity = item_digest(item)
            if identity is None:
                issue_id, digest = issue_id_of(item), None
                if not isinstance(issue_id, str):
                    self.unnamed += 1
                    continue  # refused by validation in stage_rows
            else:
                issue_id, digest = identity
            entry = self.digests.get(issue_id)
            if entry is None:
                self.digests[issue_id] = [digest, 1]
            else:
                entry[1] += 1
                if entry[0] != digest:
                    entry[0] = None

    def digest_rows(self) -> list[tuple[str, bytes | None, int]]:
        """Rows for the digest stage: every issue_id of the batch with the digest of its
        items, or None when they differ or one could not be digested (the issue is then
        sent in full), and its number of items."""
        return [(issue_id, digest, count) for issue_id, (digest, count) in self.digests.items()]

    def stage_rows(
        self, settled: Iterable[str], time_zone: str, wrap_json: Callable[[Any], Any]
    ) -> list[list[Any]]:
        """The items not ``settled`` by digest as staging rows: validated (an
        ``InvalidInput`` names the item's position), the same ``issue_id`` merged in
        order, as if the items had been upserted one after the other. A time without an
        offset is read in ``time_zone`` (the server's), as the server would read it;
        ``raw_data`` is wrapped by ``wrap_json`` (the driver's JSON adapter)."""
        skip = set(settled)
        if not self.unnamed and len(skip) == len(self.digests):
            return []  # every item settled (a re-crawl that found nothing changed)
        staged: dict[str, list[Any]] = {}  # issue_id -> [values, given fields, count]
        for index, item in zip(self.positions, self.items, strict=True):
            if skip and issue_id_of(item) in skip:
                continue
            try:
                issue = validate_input(NewIssue, item)
            except InvalidInput as error:
                raise InvalidInput(f"issues[{index}]: {error}") from error
            values: dict[str, Any] = issue.__dict__  # the field values (read, never changed)
            given = issue.model_fields_set
            entry = staged.get(issue.issue_id)
            if entry is None:
                staged[issue.issue_id] = [values, given, 1]
            else:  # merged into new objects: the caller's records stay untouched
                entry[0] = {**entry[0], **{name: values[name] for name in given}}
                entry[1] = entry[1] | given
                entry[2] += 1
        zone = _zone(time_zone)
        return [
            [
                *_with_offsets(_STAGED_VALUES(values), zone),
                wrap_json(values["raw_data"]),
                None if given >= _ALL_FIELDS else sorted(given),
                occurrences,
                self._digest_of(issue_id),
            ]
            for issue_id, (values, given, occurrences) in staged.items()
        ]

    def _digest_of(self, issue_id: str) -> bytes | None:
        entry = self.digests.get(issue_id)
        return None if entry is None else entry[0]


def _with_offsets(values: tuple[Any, ...], zone: tzinfo) -> tuple[Any, ...]:
    """``values`` with every time that has no offset placed in ``zone``."""
    if all(getattr(values[i], "tzinfo", True) is not None for i in _TIME_POSITIONS):
        return values  # the usual case: every time has its offset, or is None
    return tuple(
        v.replace(tzinfo=zone) if isinstance(v, datetime) and v.tzinfo is None else v
        for v in values
    )


@lru_cache(maxsize=8)
def _zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ValueError, ZoneInfoNotFoundError):  # e.g. a POSIX offset spelling
        raise InvalidInput(
            f"the server's TimeZone {name!r} is unknown here: give times with an offset"
        ) from None


def issue_id_of(item: Any) -> Any:
    """The ``issue_id`` an item gives, as given (None when it gives none)."""
    if isinstance(item, NewIssue):
        return item.issue_id
    if isinstance(item, Mapping):
        return item.get("issue_id")
    return None


def add_results(one: UpsertResult, other: UpsertResult) -> UpsertResult:
    """The counts of two upserts added up."""
    return UpsertResult(
        inserted=one.inserted + other.inserted,
        updated=one.updated + other.updated,
        unchanged=one.unchanged + other.unchanged,
    )


LOCK_BUCKETS = 512
"""Buckets of the lock order of issue writers (``db/_async/repositories/issues.py``);
``issues.lock_issues`` computes them on the server the same way (``lock_bucket``)."""


def lock_bucket(issue_id: str) -> int:
    """The lock-order bucket of an issue, as ``issues.lock_issues`` computes it on the server
    (which alone decides the locks; ``db.upsert_issues`` routes by it, so that its
    connections never share a bucket)."""
    digest = hashlib.md5(issue_id.encode("utf-8", "surrogatepass"), usedforsecurity=False)
    return int.from_bytes(digest.digest()[-2:], "big") % LOCK_BUCKETS
