"""``s.comments``: comments of issues (shared)."""

from __future__ import annotations

from ims_repo.repositories.base import Repository


class CommentRepository(Repository):
    """Comments of issues (shared)."""
