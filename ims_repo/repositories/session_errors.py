"""``s.session_errors``: errors met during crawl sessions."""

from __future__ import annotations

from ims_repo.repositories.base import Repository


class SessionErrorRepository(Repository):
    """Errors met during crawl sessions."""
