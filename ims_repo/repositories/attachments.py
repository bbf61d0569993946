"""``s.attachments``: attachments of issues (shared)."""

from __future__ import annotations

from ims_repo.repositories.base import Repository


class AttachmentRepository(Repository):
    """Attachments of issues (shared)."""
