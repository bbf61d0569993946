"""``s.issues``: issues: shared by every user; crawled, re-crawled, searched."""

from __future__ import annotations

from ims_repo.repositories.base import Repository


class IssueRepository(Repository):
    """Issues: shared by every user; crawled, re-crawled, searched."""
