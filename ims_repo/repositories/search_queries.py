"""``s.search_queries``: the search log: each user's searches."""

from __future__ import annotations

from ims_repo.repositories.base import Repository


class SearchQueryRepository(Repository):
    """The search log: each user's searches."""
