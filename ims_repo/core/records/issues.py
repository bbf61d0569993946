"""Records of ``ims.issues`` and its children (comments, history, attachments), shared
by every user, and the shapes the issue queries return."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field, model_validator

from ims_repo.core.records.activity import SearchQuery
from ims_repo.core.records.crawl_sessions import CrawlSession
from ims_repo.core.records.types import (
    INDEXED_TEXT_MAX,
    INPUT_CONFIG,
    INT4_MAX,
    RECORD_CONFIG,
    JsonObject,
    Text,
)

_SHA256 = r"^[0-9a-f]{64}$"


class Issue(BaseModel):
    """A row of ``ims.issues`` (the stored search vector is not a field)."""

    model_config = RECORD_CONFIG

    issue_pk: int
    issue_id: str
    title: str
    description: str | None
    product: str
    module: str | None
    version: str | None
    status: str | None
    priority: str | None
    severity: str | None
    reporter: str | None
    assignee: str | None
    issue_created_at: datetime | None
    issue_updated_at: datetime | None
    url: str | None
    raw_data: dict[str, object]
    first_crawled_at: datetime
    last_crawled_at: datetime
    crawl_count: int


class _CrawledIssueFields(BaseModel):
    """The fields of an issue as crawled, shared by ``NewIssue`` and ``PageIssue`` (not
    one another's subclass: a page item is refused where an issue alone is expected)."""

    model_config = INPUT_CONFIG

    issue_id: Text = Field(min_length=1, max_length=INDEXED_TEXT_MAX)
    title: Text
    product: Text = Field(min_length=1, max_length=INDEXED_TEXT_MAX)
    description: Text | None = None
    module: Text | None = None
    version: Text | None = None
    status: Text | None = Field(default=None, max_length=INDEXED_TEXT_MAX)
    priority: Text | None = None
    severity: Text | None = None
    reporter: Text | None = None
    assignee: Text | None = None
    issue_created_at: datetime | None = None
    issue_updated_at: datetime | None = None
    url: Text | None = None
    raw_data: JsonObject = Field(default_factory=dict)


class NewIssue(_CrawledIssueFields):
    """An issue as crawled. On an upsert, fields left unset keep their stored value."""


class IssueComment(BaseModel):
    """A row of ``ims.issue_comments``."""

    model_config = RECORD_CONFIG

    comment_id: int
    issue_pk: int
    author: str | None
    content: str
    commented_at: datetime | None
    comment_order: int | None


class NewIssueComment(BaseModel):
    """A comment to add to an issue.

    ``issue_pk`` names the issue, as on ``NewAttachment``: ``s.comments.create(record)``
    needs it. It may be left out where the call names the issue
    (``create(issue_pk, new)``, ``add_many(issue_pk, items)``); an item naming a
    different issue there is refused.
    """

    model_config = INPUT_CONFIG

    issue_pk: int | None = None
    content: Text
    author: Text | None = None
    commented_at: datetime | None = None
    comment_order: int | None = None


class IssueHistory(BaseModel):
    """A row of ``ims.issue_history``: one field change of an issue."""

    model_config = RECORD_CONFIG

    history_id: int
    issue_pk: int
    changed_at: datetime
    changed_by: str | None
    field_name: str
    old_value: str | None
    new_value: str | None


class NewIssueHistory(BaseModel):
    """A field change to record (``changed_at`` defaults to now, in the database).

    ``issue_pk`` as on ``NewIssueComment``: needed by ``s.history.create(record)``,
    optional where the call names the issue.
    """

    model_config = INPUT_CONFIG

    issue_pk: int | None = None
    field_name: Text = Field(min_length=1)
    changed_at: datetime | None = None
    changed_by: Text | None = None
    old_value: Text | None = None
    new_value: Text | None = None


class Attachment(BaseModel):
    """A row of ``ims.attachments``; ``session_id`` only records who downloaded it."""

    model_config = RECORD_CONFIG

    attachment_id: int
    issue_pk: int
    session_id: int | None
    filename: str
    file_type: str | None
    file_size: int | None
    storage_path: str | None
    checksum_sha256: str | None
    downloaded_at: datetime


class CrawledAttachment(BaseModel):
    """An attachment as crawled with its issue (``PageIssue.attachments``): the file,
    without the issue it belongs to."""

    model_config = INPUT_CONFIG

    filename: Text = Field(min_length=1)
    session_id: int | None = None
    file_type: Text | None = None
    file_size: int | None = Field(default=None, ge=0)
    storage_path: Text | None = None
    checksum_sha256: str | None = Field(default=None, pattern=_SHA256)
    downloaded_at: datetime | None = None


class NewAttachment(CrawledAttachment):
    """An attachment to record against an issue."""

    issue_pk: int


class PageIssue(_CrawledIssueFields):
    """An issue as crawled on one page, with its lists (``s.issues.store_page``): the
    fields of ``NewIssue`` (those left unset keep their stored value), and the shape of
    a line of ``ims-repo import``.

    A list given *replaces* the issue's stored list (a re-crawl sends the whole list; an
    equal list is left untouched, ``[]`` removes every item); a list left out (None)
    keeps the stored one. Children name no ``issue_pk``: the item's issue is meant.
    """

    comments: list[NewIssueComment] | None = None
    history: list[NewIssueHistory] | None = None
    attachments: list[CrawledAttachment] | None = None
    crawl_duration_ms: int | None = Field(default=None, ge=0, le=INT4_MAX)
    """How long crawling the issue took, recorded on its link to the crawl session."""

    @model_validator(mode="after")
    def _children_name_no_issue(self) -> PageIssue:
        children: list[tuple[str, int, NewIssueComment | NewIssueHistory]] = [
            *(("comments", index, item) for index, item in enumerate(self.comments or ())),
            *(("history", index, item) for index, item in enumerate(self.history or ())),
        ]
        for kind, index, item in children:
            if item.issue_pk is not None:
                raise ValueError(
                    f"{kind}[{index}].issue_pk: not allowed (the page item's issue is meant)"
                )
        return self


class StoredPage(BaseModel):
    """What ``s.issues.store_page`` did."""

    model_config = RECORD_CONFIG

    inserted: int
    """Issues that were new."""
    updated: int
    """Stored issues whose crawled fields changed."""
    unchanged: int
    """Stored issues crawled again with nothing changed."""
    comments_added: int = 0
    comments_removed: int = 0
    history_added: int = 0
    history_removed: int = 0
    attachments_added: int = 0
    attachments_removed: int = 0
    linked: int
    """Issues newly linked to the crawl session."""
    relinked: int
    """Issues the session had linked already (their crawl order moved)."""
    search: SearchQuery | None = None
    """The search logged with the page, if one was given."""


class IssueDetail(Issue):
    """An issue with its comments (by ``comment_order``, then time), history (by time)
    and attachments, loaded in one statement."""

    comments: list[IssueComment]
    history: list[IssueHistory]
    attachments: list[Attachment]


class SessionIssue(BaseModel):
    """A row of ``ims.session_issues``: an issue crawled in a session."""

    model_config = RECORD_CONFIG

    session_id: int
    issue_pk: int
    user_id: int
    crawl_order: int | None
    crawl_duration_ms: int | None
    crawled_at: datetime


class NewSessionIssue(BaseModel):
    """A link to add with ``session_issues.link_many`` (``user_id`` comes from the session)."""

    model_config = INPUT_CONFIG

    session_id: int
    issue_pk: int
    crawl_order: int | None = None
    crawl_duration_ms: int | None = Field(default=None, ge=0)


class CrawledIssue(BaseModel):
    """An issue as crawled in one session (``crawl_sessions.issues``), in crawl order."""

    model_config = RECORD_CONFIG

    issue: Issue
    """The issue as stored now."""
    crawl_order: int | None
    """Its place in the session's crawl (``session_issues.crawl_order``), if recorded."""
    crawl_duration_ms: int | None
    """How long crawling it took, if recorded."""
    crawled_at: datetime
    """When the session linked it."""


class IssueCrawl(BaseModel):
    """A session that crawled an issue (``issues.sessions``)."""

    model_config = RECORD_CONFIG

    session: CrawlSession
    """The crawl session (only sessions the context can see)."""
    crawl_order: int | None
    """The issue's place in that session's crawl, if recorded."""
    crawl_duration_ms: int | None
    """How long crawling it took, if recorded."""
    crawled_at: datetime
    """When that session linked it."""


class UpsertResult(BaseModel):
    """What a bulk upsert did: rows inserted, changed, and re-crawled unchanged."""

    model_config = RECORD_CONFIG

    inserted: int = 0
    """Issues that were new."""
    updated: int = 0
    """Stored issues whose crawled fields changed."""
    unchanged: int = 0
    """Stored issues crawled again with nothing changed (only the crawl count moved)."""


class SearchHit(BaseModel):
    """One full-text hit of ``ims.search_issues``, best first."""

    model_config = RECORD_CONFIG

    issue_pk: int
    issue_id: str
    title: str
    product: str
    status: str | None
    rank: float
    """Relevance, higher first: ``ts_rank`` for a full-text hit (> 0), 0 or less for a
    title that merely contains the query's words (``s.search.issues``)."""
