"""The module-level database of ``get_session``: a sync convenience, created from the
environment on first use."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from ims_repo.db._sync.database import Database
from ims_repo.db._sync.session import Session

_default: Database | None = None
_default_lock = threading.Lock()


def default_database() -> Database:
    """The database used by ``get_session``, created from the environment on first use."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Database.from_env()
        return _default


@contextmanager
def get_session(user_id: int | None = None) -> Iterator[Session]:
    """``Database.session`` on the module-level database from the environment."""
    with default_database().session(user_id) as session:
        yield session
