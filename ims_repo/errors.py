"""The exceptions of ims_repo (SPEC §4 names this module); defined in ``ims_repo.core.errors``."""

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

__all__ = [
    "DatabaseError",
    "DatabaseUnavailable",
    "Duplicate",
    "ForeignKeyViolation",
    "ImsRepoError",
    "InvalidInput",
    "NotFound",
    "PermissionDenied",
    "PoolExhausted",
    "QueryFileError",
    "ReadOnlySession",
    "StatementTimeout",
    "TransactionAborted",
    "TransactionConflict",
    "UnsafeLogin",
]
