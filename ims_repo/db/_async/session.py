"""A session: one pooled connection, one transaction at a time, one RLS context, and
the repositories (``s.users``, ``s.issues``, …) that run their named statements on it.

How statements run and how the context is kept from leaking: ``runner.py``.
"""

from __future__ import annotations

from functools import cached_property

from ims_repo.db._async.repositories.analytics import AsyncAnalyticsRepository
from ims_repo.db._async.repositories.attachments import AsyncAttachmentRepository
from ims_repo.db._async.repositories.audit import AsyncAuditRepository
from ims_repo.db._async.repositories.comments import AsyncCommentRepository
from ims_repo.db._async.repositories.crawl_sessions import AsyncCrawlSessionRepository
from ims_repo.db._async.repositories.history import AsyncHistoryRepository
from ims_repo.db._async.repositories.issues import AsyncIssueRepository
from ims_repo.db._async.repositories.search import AsyncSearchRepository
from ims_repo.db._async.repositories.search_queries import AsyncSearchQueryRepository
from ims_repo.db._async.repositories.session_errors import AsyncSessionErrorRepository
from ims_repo.db._async.repositories.session_issues import AsyncSessionIssueRepository
from ims_repo.db._async.repositories.users import AsyncUserRepository
from ims_repo.db._async.runner import AsyncRunner


class AsyncSession(AsyncRunner):
    """Runs named statements for one caller; obtained from ``db.session()``.

    The repositories (``s.users``, ``s.crawl_sessions``, …) are attributes; ``execute``
    runs raw SQL; ``commit``/``rollback`` end the current transaction early and the
    context holds for the rest of the block; ``savepoint()`` lets a statement fail
    without aborting the transaction.
    """

    def forget_repositories(self) -> None:
        """Drop the repositories made for this block. Each holds its session, so a session
        that kept them would be a reference cycle per checkout, left for the garbage
        collector's full passes (measured: most of the layer's client CPU over the floor
        on point reads); the database calls this when the block ends."""
        for name in _REPOSITORIES:
            self.__dict__.pop(name, None)

    @cached_property
    def users(self) -> AsyncUserRepository:
        """``ims.users``: the accounts whose context a session takes (shared by every user)."""
        return AsyncUserRepository(self)

    @cached_property
    def crawl_sessions(self) -> AsyncCrawlSessionRepository:
        """``ims.crawl_sessions``: crawl runs and their JSON metadata (the context's own)."""
        return AsyncCrawlSessionRepository(self)

    @cached_property
    def issues(self) -> AsyncIssueRepository:
        """``ims.issues``: crawled issues, their upserts, counts and nested loads (shared)."""
        return AsyncIssueRepository(self)

    @cached_property
    def session_issues(self) -> AsyncSessionIssueRepository:
        """``ims.session_issues``: which issues a crawl session crawled (the context's own)."""
        return AsyncSessionIssueRepository(self)

    @cached_property
    def comments(self) -> AsyncCommentRepository:
        """``ims.issue_comments``: comments of issues (shared, deleted with the issue)."""
        return AsyncCommentRepository(self)

    @cached_property
    def history(self) -> AsyncHistoryRepository:
        """``ims.issue_history``: field changes of issues from the IMS (shared)."""
        return AsyncHistoryRepository(self)

    @cached_property
    def attachments(self) -> AsyncAttachmentRepository:
        """``ims.attachments``: files attached to issues (shared)."""
        return AsyncAttachmentRepository(self)

    @cached_property
    def search_queries(self) -> AsyncSearchQueryRepository:
        """``ims.search_queries``: the search log (the context's own)."""
        return AsyncSearchQueryRepository(self)

    @cached_property
    def session_errors(self) -> AsyncSessionErrorRepository:
        """``ims.session_errors``: errors met by crawl sessions (the context's own)."""
        return AsyncSessionErrorRepository(self)

    @cached_property
    def analytics(self) -> AsyncAnalyticsRepository:
        """``ims.analytics_daily``/``_monthly``: per-user figures, and their refresh."""
        return AsyncAnalyticsRepository(self)

    @cached_property
    def audit(self) -> AsyncAuditRepository:
        """``ims.audit_log``: who changed which user, issue or crawl session (read-only)."""
        return AsyncAuditRepository(self)

    @cached_property
    def search(self) -> AsyncSearchRepository:
        """Full-text search over issues (``ims.search_issues``), best hits first."""
        return AsyncSearchRepository(self)


_REPOSITORIES = tuple(
    name for name, value in vars(AsyncSession).items() if isinstance(value, cached_property)
)
"""The repository attributes of a session (each a cached property)."""
