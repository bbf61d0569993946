"""What every transaction of a session begins with: the RLS start-of-transaction plan.

The decision lives here, without I/O; the sync and async sessions only send it. A
transaction begins, in one pipelined round trip with its first statement, with:

1. ``BEGIN`` — unless the first statement is a read-only named statement met outside a
   transaction: then the context and the statement form one implicit transaction that
   ends with the result (one round trip, no ``COMMIT``);
2. behind a connection pooler, the settings a direct connection sends at login (the
   role of ``act_as``, the database's ``statement_timeout``: ``core/pooler.py``),
   transaction-local, in one statement;
3. the RLS context, transaction-local (``set_config(…, true)``), *always*, also when it is
   "nobody": so even a session-level value left by raw SQL is never seen by a later
   checkout of the same pooled connection;
4. the session's own ``statement_timeout``, transaction-local too, when it has one (after
   the database's, so it wins).

Commit, rollback, an exception or a lost connection all end the transaction and with it
the context, so the next checkout of the connection starts with none.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ims_repo.core.inputs import check_user_id, timeout_ms
from ims_repo.core.loader import BoundStatement
from ims_repo.core.statements.context import SET_CURRENT_USER, SET_STATEMENT_TIMEOUT

BEGIN = "BEGIN"
BEGIN_READ_ONLY = "BEGIN READ ONLY"


Step = tuple[str, Mapping[str, Any] | None]
"""One statement a transaction begins with: its text and parameters."""


@dataclass(frozen=True)
class TransactionStart:
    """The statements that open each transaction of one session (bound once, and the two
    openings built once: they are sent at the start of every transaction)."""

    user_id: int | None
    context: BoundStatement
    timeout: BoundStatement | None
    read_only: bool = False
    """A replica session's: its explicit transactions begin ``READ ONLY``."""
    settings: BoundStatement | None = None
    """Behind a pooler, the database's transaction-local settings (``core/pooler.py``)."""
    _implicit: tuple[Step, ...] = field(init=False, repr=False, compare=False)
    _explicit: tuple[Step, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        steps: list[Step] = []
        if self.settings is not None:
            steps.append((self.settings.text, self.settings.params))
        steps.append((self.context.text, self.context.params))
        if self.timeout is not None:
            steps.append((self.timeout.text, self.timeout.params))
        object.__setattr__(self, "_implicit", tuple(steps))
        begin = BEGIN_READ_ONLY if self.read_only else BEGIN
        object.__setattr__(self, "_explicit", ((begin, None), *steps))

    def opening(self, *, explicit: bool) -> tuple[Step, ...]:
        """The (text, params) sent before the first statement of a transaction:
        ``explicit`` adds ``BEGIN`` (everything but a lone read-only statement)."""
        return self._explicit if explicit else self._implicit

    def with_user(self, user_id: int | None) -> TransactionStart:
        """The same start with another RLS context."""
        return TransactionStart(
            check_user_id(user_id),
            _context(user_id),
            self.timeout,
            read_only=self.read_only,
            settings=self.settings,
        )


def transaction_start(
    user_id: int | None,
    *,
    statement_timeout: float | None = None,
    read_only: bool = False,
    settings: BoundStatement | None = None,
) -> TransactionStart:
    """The start of every transaction of a session with context ``user_id`` and, when
    given, its own ``statement_timeout`` (seconds) and the database's transaction-local
    ``settings`` (``core/pooler.py``); bad values raise ``InvalidInput``.
    ``read_only`` (a replica session's) begins explicit transactions ``READ ONLY``."""
    checked = check_user_id(user_id)
    timeout = (
        None
        if statement_timeout is None
        else SET_STATEMENT_TIMEOUT.bind(
            {"timeout": str(timeout_ms(statement_timeout, "statement_timeout"))}
        )
    )
    return TransactionStart(
        checked, _context(checked), timeout, read_only=read_only, settings=settings
    )


def _context(user_id: int | None) -> BoundStatement:
    return SET_CURRENT_USER.bind({"user_id": user_id})
