"""ims_repo: the SQL-first PostgreSQL layer of the IMS Crawler.

Named SQL statements (``ims_repo/queries/*.sql``) behind typed repositories that return
pydantic records, on a pooled psycopg 3 connection that sets the row-level-security
context for every transaction.
"""

from ims_repo.database import Database, get_session
from ims_repo.errors import (
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
    StatementTimeout,
    TransactionAborted,
    TransactionConflict,
    UnsafeLogin,
)
from ims_repo.filters import After
from ims_repo.loader import QueryFile
from ims_repo.records import *  # noqa: F403  (every record is public API)
from ims_repo.records import __all__ as _records
from ims_repo.session import Session

__all__ = [
    "After",
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
    "Session",
    "StatementTimeout",
    "TransactionAborted",
    "TransactionConflict",
    "UnsafeLogin",
    "get_session",
    *_records,
]
