"""``s.analytics``: daily and monthly figures per user."""

from __future__ import annotations

from ims_repo.repositories.base import Repository


class AnalyticsRepository(Repository):
    """Daily and monthly figures per user."""
