"""``s.audit``: the audit trail (read-only)."""

from __future__ import annotations

from ims_repo.repositories.base import Repository


class AuditRepository(Repository):
    """The audit trail (read-only)."""
