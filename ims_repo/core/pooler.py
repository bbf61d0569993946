"""Connection poolers (pgbouncer): how to tell one is in the way, and what changes then.

The decision lives here, without I/O; ``db/_async/database.py`` only asks the server.

**Detection.** A server tells the client its process id at login (``BackendKeyData``, the
key a cancel request quotes). pgbouncer answers the login itself and hands out a cancel
key of its own (pgbouncer 1.18: a random number, often negative), so the id the client
was told differs from what ``pg_backend_pid()`` returns. The login check that opening a
database already sends reads ``pg_backend_pid()`` in the same statement: detecting costs
no round trip, and nothing at all after ``open()``. A pooler that passes the server's own
key through is not detected: name it with ``pooler="pgbouncer"``.

**What changes behind a pooler.** A client connection may run each transaction on
another server connection (``pool_mode = transaction``), so nothing may live in the
server session:

- no server-side prepared statements (``prepare_threshold=None``), unless the caller
  passed a threshold of their own (pgbouncer >= 1.21 with ``max_prepared_statements``
  can carry them);
- the settings a direct connection sends once in its startup ``options`` (the role of
  ``act_as``, the database's ``statement_timeout``, a URL's own ``options``) are set
  transaction-locally instead, by one statement in the pipeline that opens every
  transaction (``core/transaction.py``), and pgbouncer, which refuses the ``options``
  startup parameter, never sees them.

Session pooling is treated the same way (the client cannot tell the two modes apart):
it costs the prepared statements only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from ims_repo.core.errors import InvalidInput
from ims_repo.core.loader import BoundStatement
from ims_repo.core.statements.context import SET_SETTINGS

Pooler = Literal["auto", "pgbouncer", "none"]
"""``auto``: detect at ``open()``; ``pgbouncer``: behind a transaction pooler, whatever
the detection says; ``none``: a direct connection, whatever it says."""

PrepareThreshold = int | None | Literal["auto"]
"""psycopg's ``prepare_threshold``, or ``auto``: 5 on a direct connection, ``None``
(never prepare) behind a pooler."""

DIRECT_PREPARE_THRESHOLD = 5
"""psycopg's default: a statement run this many times on a connection is prepared."""

Setting = tuple[str, str]
"""A server setting (name, value), such as ``("role", "ims_app")``."""


def check_pooler(pooler: str) -> Pooler:
    """``pooler`` if it is one of ``auto``, ``pgbouncer``, ``none``; else ``InvalidInput``."""
    choices: tuple[Pooler, ...] = get_args(Pooler)
    for choice in choices:
        if pooler == choice:
            return choice
    raise InvalidInput(f"pooler must be one of {', '.join(choices)}, not {pooler!r}")


def behind_pooler(pooler: Pooler, announced_pid: int, backend_pid: int) -> bool:
    """Whether the connections go through a pooler: as named, or (``auto``) when the
    process id announced at login is not the server process's own."""
    if pooler == "auto":
        return announced_pid != backend_pid
    return pooler == "pgbouncer"


@dataclass(frozen=True)
class ConnectionPlan:
    """How the pool's connections are made, and what every transaction carries."""

    pooled: bool
    startup_options: str
    """The ``options`` each pooled connection sends at login ('' for none)."""
    prepare_threshold: int | None
    settings: BoundStatement | None
    """Sent transaction-locally at the start of every transaction (behind a pooler)."""


def plan_connections(
    url_options: str,
    settings: tuple[Setting, ...],
    *,
    pooled: bool,
    prepare_threshold: PrepareThreshold,
) -> ConnectionPlan:
    """The plan for a URL whose ``options`` are ``url_options`` and the ``settings`` the
    database adds (role, statement_timeout): in the startup options of a direct
    connection, or in every transaction behind a pooler, with the URL's own options
    (``InvalidInput`` when those are not all settings)."""
    if not pooled:
        added = [f"-c {name}={value}" for name, value in settings]
        return ConnectionPlan(
            pooled=False,
            startup_options=" ".join([url_options, *added]).strip(),
            prepare_threshold=(
                DIRECT_PREPARE_THRESHOLD if prepare_threshold == "auto" else prepare_threshold
            ),
            settings=None,
        )
    return ConnectionPlan(
        pooled=True,
        startup_options="",
        prepare_threshold=None if prepare_threshold == "auto" else prepare_threshold,
        settings=settings_statement((*parse_options(url_options), *settings)),
    )


def settings_statement(settings: tuple[Setting, ...]) -> BoundStatement | None:
    """The one statement that sets ``settings`` for the current transaction (None for
    none). Names and values travel as parameters: nothing is built into the SQL."""
    if not settings:
        return None
    return SET_SETTINGS.bind(
        {"names": [name for name, _ in settings], "values": [value for _, value in settings]}
    )


def parse_options(options: str) -> tuple[Setting, ...]:
    """The settings of a libpq ``options`` string (``-c name=value``, ``-cname=value``,
    ``--name=value``; a backslash escapes the next character, as the server reads it).

    Any other server switch cannot be carried in a transaction: ``InvalidInput``."""
    words = _split(options)
    settings: list[Setting] = []
    index = 0
    while index < len(words):
        word = words[index]
        index += 1
        if word == "-c" and index < len(words):
            assignment = words[index]
            index += 1
        elif (word.startswith("-c") and len(word) > 2) or word.startswith("--"):
            assignment = word[2:]
        else:
            raise InvalidInput(
                f"the URL's options {options!r} hold {word!r}, which cannot be carried "
                "through a connection pooler: only settings (-c name=value) can, and "
                "ims_repo sets those in every transaction"
            )
        name, equals, value = assignment.partition("=")
        if not equals or not name:
            raise InvalidInput(
                f"the URL's options {options!r} hold {assignment!r}, not a name=value setting"
            )
        settings.append((name.replace("-", "_"), value))
    return tuple(settings)


def _split(options: str) -> list[str]:
    """``options`` cut at unescaped white space, escapes removed (the server's rule)."""
    words: list[str] = []
    word: list[str] = []
    escaped = False
    for char in options:
        if escaped:
            word.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char.isspace():
            if word:
                words.append("".join(word))
                word = []
        else:
            word.append(char)
    if word:
        words.append("".join(word))
    return words
