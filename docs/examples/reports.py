"""An application's own queries on ims_repo: a ``.sql`` file, a record per result and a
typed function per statement, written exactly as ims_repo's repositories are.

Usage::

    from ims_repo import Database
    from reports import urgent_issues, who_crawled

    db = Database.from_env()
    with db.session(user_id=2) as s:
        for issue in urgent_issues(s, priority="High", severity="Critical"):
            print(issue.issue_id, issue.title)

The statements are checked against the schema like the library's own::

    from ims_repo.services.checks import check_statements
    assert check_statements(url, files=[reports.SQL]) == []
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from ims_repo import QueryFile, Session

SQL = QueryFile(Path(__file__).with_name("reports.sql"))


class UrgentIssue(BaseModel):
    """A row of ``urgent_issues``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    issue_pk: int
    issue_id: str
    title: str
    product: str
    status: str | None
    priority: str | None
    severity: str | None


class IssueCrawler(BaseModel):
    """A row of ``who_crawled``: one crawl of one issue, and who ran it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    username: str
    session_id: int
    session_uuid: UUID
    issue_id: str
    title: str
    crawl_order: int | None
    crawled_at: datetime


# Loaded when this module is imported: a statement renamed in the file, or a parameter
# the SQL and these calls disagree on, fails here rather than at the first call.
URGENT_ISSUES = SQL.statement("urgent_issues", "priority", "severity", record=UrgentIssue)
WHO_CRAWLED = SQL.statement("who_crawled", "product", record=IssueCrawler)


def urgent_issues(
    s: Session, *, priority: str = "High", severity: str = "Critical"
) -> list[UrgentIssue]:
    """Issues with this priority or this severity, by ``issue_pk``."""
    bound = URGENT_ISSUES.bind({"priority": priority, "severity": severity})
    return s.fetch_all(bound, UrgentIssue)


def who_crawled(s: Session, product: str) -> list[IssueCrawler]:
    """Each crawl of an issue of ``product`` that the session's context may see."""
    return s.fetch_all(WHO_CRAWLED.bind({"product": product}), IssueCrawler)
