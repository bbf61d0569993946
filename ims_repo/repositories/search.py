"""``s.search``: full-text search over issues."""

from __future__ import annotations

from ims_repo.repositories.base import Repository


class SearchRepository(Repository):
    """Full-text search over issues."""
