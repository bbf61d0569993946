"""ims_repo: the SQL-first PostgreSQL layer of the IMS Crawler.

Named SQL statements (``ims_repo/queries/*.sql``) behind typed repositories that return
pydantic records, on a pooled psycopg 3 connection that sets the row-level-security
context for every transaction.
"""

from ims_repo.database import Database, get_session
from ims_repo.errors import (
    Duplicate,
    ForeignKeyViolation,
    ImsRepoError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    QueryFileError,
    TransactionAborted,
    UnsafeLogin,
)
from ims_repo.loader import QueryFile
from ims_repo.records import (
    CrawlSession,
    DurationStats,
    NewCrawlSession,
    NewUser,
    User,
    UserStats,
    UserWithSessions,
)
from ims_repo.session import Session

__all__ = [
    "CrawlSession",
    "Database",
    "Duplicate",
    "DurationStats",
    "ForeignKeyViolation",
    "ImsRepoError",
    "InvalidInput",
    "NewCrawlSession",
    "NewUser",
    "NotFound",
    "PermissionDenied",
    "QueryFile",
    "QueryFileError",
    "Session",
    "TransactionAborted",
    "UnsafeLogin",
    "User",
    "UserStats",
    "UserWithSessions",
    "get_session",
]
