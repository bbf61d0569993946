"""How ``s.issues.store_page`` turns a crawled page into the JSON documents of its
statements, all known before anything is sent, so the page goes in one pipeline.

A page is a list of ``PageIssue`` items. Its issues are staged as ``upsert_many``
stages a batch (``core/staging.py``: validated, merged per ``issue_id``, with their
digests), but as one JSON array (``issues.fill_upsert_stage``), since COPY cannot run in
a pipeline; each kind of list (comments, history, attachments) becomes one JSON array
for its ``imports.replace_*`` statement, and the links one array for
``imports.link_issues``. Those statements name issues by ``issue_id``, so no key has to
come back from the server between them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from ims_repo.core.errors import InvalidInput
from ims_repo.core.records import NewIssue, PageIssue
from ims_repo.core.records.types import INT4_MAX, validate_all
from ims_repo.core.staging import STAGED_FIELDS, Batch

STAGE_COLUMNS: Final = (*STAGED_FIELDS, "set_fields", "occurrences", "content_hash")
"""The staging table's columns, in the order of ``Batch.stage_rows``'s values."""
_ISSUE_FIELDS: Final = frozenset(NewIssue.model_fields)
LISTS: Final = ("comments", "history", "attachments")
"""The lists a ``PageIssue`` may carry, in the order they are written."""


@dataclass
class Page:
    """The documents of one page's statements."""

    batch: Batch
    """The issues as ``upsert_many`` would stage them (digests, merge, positions)."""
    lists: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)
    """kind -> issue_id -> the list given for it (the last item's list wins)."""
    links: list[dict[str, Any]] = field(default_factory=list)
    """One link per issue: issue_id, crawl_order, crawl_duration_ms."""

    @property
    def issue_ids(self) -> list[str]:
        """The page's issues, once each, in the order they were first given."""
        return list(self.batch.digests)

    def stage_documents(self, time_zone: str) -> list[dict[str, Any]]:
        """The staged rows as JSON objects for ``issues.fill_upsert_stage`` (times carry
        their offset; the digest is bytea's hex text)."""
        rows = self.batch.stage_rows((), time_zone, _same)
        documents = [dict(zip(STAGE_COLUMNS, row, strict=True)) for row in rows]
        for document in documents:
            digest = document["content_hash"]
            if digest is not None:
                document["content_hash"] = "\\x" + digest.hex()
        return documents

    def list_documents(self, kind: str) -> tuple[list[str], list[dict[str, Any]]]:
        """The issues whose ``kind`` list is given, and every item of those lists with
        its ``issue_id``, in page order (for ``imports.replace_<kind>``)."""
        lists = self.lists.get(kind, {})
        items = [
            {"issue_id": issue_id, **item} for issue_id, given in lists.items() for item in given
        ]
        return list(lists), items


def build_page(issues: Iterable[Any], first_crawl_order: int | None) -> Page:
    """``issues`` (``PageIssue`` records or mappings of their fields) validated and
    shaped for their statements; ``InvalidInput`` names the first bad item's position.
    Issue ``i`` of the page is linked with crawl order ``first_crawl_order + i`` (the
    position of its last occurrence), or none when ``first_crawl_order`` is None."""
    if first_crawl_order is not None and not (
        type(first_crawl_order) is int and 0 <= first_crawl_order <= INT4_MAX
    ):
        raise InvalidInput(f"first_crawl_order must be an integer from 0 to {INT4_MAX}")
    items = validate_all(PageIssue, issues, "issues")
    if first_crawl_order is not None and first_crawl_order + len(items) - 1 > INT4_MAX:
        raise InvalidInput(f"first_crawl_order + the page's length exceeds {INT4_MAX}")
    new_issues = [_new_issue(item) for item in items]
    page = Page(batch=Batch(new_issues, range(len(new_issues))))
    links: dict[str, dict[str, Any]] = {}
    for position, item in enumerate(items):
        for kind in LISTS:
            given = getattr(item, kind)
            if given is not None:
                page.lists.setdefault(kind, {})[item.issue_id] = [
                    child.model_dump(exclude={"issue_pk"}) for child in given
                ]
        links.pop(item.issue_id, None)  # re-inserted: the last occurrence's place
        links[item.issue_id] = {
            "issue_id": item.issue_id,
            "crawl_order": None if first_crawl_order is None else first_crawl_order + position,
            "crawl_duration_ms": item.crawl_duration_ms,
        }
    page.links = list(links.values())
    return page


def _new_issue(item: PageIssue) -> NewIssue:
    """The issue part of a page item, as the ``NewIssue`` it validated as (the same
    fields set, so fields left out keep their stored value)."""
    given = item.model_fields_set & _ISSUE_FIELDS
    return NewIssue.model_construct(
        _fields_set=given, **{name: getattr(item, name) for name in _ISSUE_FIELDS}
    )


def _same(value: Any) -> Any:
    return value
