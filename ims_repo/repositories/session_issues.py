"""``s.session_issues``: links between a crawl session and the issues it crawled."""

from __future__ import annotations

from ims_repo.repositories.base import Repository


class SessionIssueRepository(Repository):
    """Links between a crawl session and the issues it crawled."""
