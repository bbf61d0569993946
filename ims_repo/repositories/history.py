"""``s.history``: field-change history of issues (shared)."""

from __future__ import annotations

from ims_repo.repositories.base import Repository


class HistoryRepository(Repository):
    """Field-change history of issues (shared)."""
