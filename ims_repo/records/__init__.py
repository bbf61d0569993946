"""Typed records: one per table (fields = columns) and a ``New…`` input per writable one."""

from ims_repo.records.crawl_sessions import CrawlSession, DurationStats, NewCrawlSession
from ims_repo.records.users import NewUser, User, UserStats, UserWithSessions

__all__ = [
    "CrawlSession",
    "DurationStats",
    "NewCrawlSession",
    "NewUser",
    "User",
    "UserStats",
    "UserWithSessions",
]
