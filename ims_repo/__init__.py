"""ims_repo: the SQL-first PostgreSQL layer of the IMS Crawler.

Named SQL statements (``ims_repo/queries/*.sql``) behind typed repositories that return
pydantic records, on a pooled psycopg 3 connection that sets the row-level-security
context for every transaction; ``Database``/``Session`` for threads, ``AsyncDatabase``/
``AsyncSession`` for asyncio, the same API awaited.
"""

from ims_repo.core.errors import (
    DatabaseError,
    DatabaseUnavailable,
    Duplicate,
    ForeignKeyViolation,
    ImsRepoError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    PoolExhausted,
    QueryFileError,
    ReadOnlySession,
    StatementTimeout,
    TransactionAborted,
    TransactionConflict,
    UnsafeLogin,
)
from ims_repo.core.filters import After
from ims_repo.core.loader import QueryFile
from ims_repo.core.positions import CommitPosition
from ims_repo.core.records import *  # noqa: F403  (every record is public API)
from ims_repo.core.records import __all__ as _records
from ims_repo.db import AsyncDatabase, AsyncSession, Database, Session, get_session

__all__ = [
    "After",
    "AsyncDatabase",
    "AsyncSession",
    "CommitPosition",
    "Database",
    "DatabaseError",
    "DatabaseUnavailable",
    "Duplicate",
    "ForeignKeyViolation",
    "ImsRepoError",
    "InvalidInput",
    "NotFound",
    "PermissionDenied",
    "PoolExhausted",
    "QueryFile",
    "QueryFileError",
    "ReadOnlySession",
    "Session",
    "StatementTimeout",
    "TransactionAborted",
    "TransactionConflict",
    "UnsafeLogin",
    "get_session",
    *_records,
]
