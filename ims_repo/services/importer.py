"""Bulk import of crawled issues from JSON Lines: ``import_file`` and ``ims-repo import``.

The file holds one issue a line: a JSON object with the fields of ``PageIssue`` (those of
``NewIssue`` and, optionally, ``comments``, ``history`` and ``attachments``, arrays of
objects with the fields of ``NewIssueComment``, ``NewIssueHistory`` less ``issue_pk`` and
``CrawledAttachment``, and ``crawl_duration_ms`` for the crawl-session link). Blank lines are
skipped. Any other line is *rejected* with its number and reason, and the import goes on.

How it is stored, per batch of ``batch_size`` lines, in one transaction committed at the
batch's end (a crash loses at most the batch in flight, and never half of one):

1. the issues through ``s.issues.upsert_many`` (fields a line leaves out keep their
   stored value; the same ``issue_id`` twice: the later line wins, and ``crawl_count``
   counts both);
2. their children in one statement per kind (``imports.replace_*``), under the issues'
   locks the upsert took (the lock order of ``repositories/issues.py``): a list present in
   a line *replaces* the issue's stored list, since a re-crawl resends the whole list;
   an issue whose stored list is already equal is not touched, so re-importing a file
   duplicates nothing and rewrites nothing. A line without the key leaves the stored
   list as it is; ``"comments": []`` clears it;
3. their links to the crawl session (``imports.link_issues``), ``crawl_order`` = the
   line number; a re-import into the same session updates the order instead of failing.

A batch the server refuses for its data (a value out of range, say) is rolled back and
split in halves until the offending line is found: that line is rejected with the
server's reason and every other line of the batch is stored. Anything else (a lost
connection, a refused privilege) stops the import with ``ImportFailed``, which carries
the report: every batch before it is committed, and ``from_line`` resumes after them.

Memory holds one batch and the first ``keep_rejects`` rejects, whatever the file's size.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import IO, Annotated, Any, Final

import psycopg
from psycopg.types.json import Jsonb
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from ims_repo.core.errors import (
    Duplicate,
    ForeignKeyViolation,
    ImsRepoError,
    InvalidInput,
    NotFound,
)
from ims_repo.core.loader import Statement
from ims_repo.core.records import (
    CrawledAttachment,
    CrawlSession,
    NewCrawlSession,
    NewIssue,
    NewIssueComment,
    NewIssueHistory,
)
from ims_repo.core.records.types import INT4_MAX
from ims_repo.core.statements.imports import (
    LINK_ISSUES,
    REPLACE_ATTACHMENTS,
    REPLACE_COMMENTS,
    REPLACE_HISTORY,
    ImportLinked,
    ImportReplaced,
)
from ims_repo.db import Database, Session

# Rejected lines (their number and reason; a server's refusal only by SQLSTATE, since its
# message may quote the line's data) and the splitting of a refused batch.
_log = logging.getLogger("ims_repo.importer")

__all__ = ["ImportFailed", "ImportReport", "Rejected", "import_file", "summary"]


DEFAULT_BATCH_SIZE: Final = 1000
SHOWN_REJECTS: Final = 20
"""How many rejected lines the command prints (all go to ``--rejects FILE``)."""

_DURATION = TypeAdapter(Annotated[int, Field(ge=0, le=INT4_MAX)])
_CHILD_MODELS: Final[dict[str, type[BaseModel]]] = {
    "comments": NewIssueComment,
    "history": NewIssueHistory,
    "attachments": CrawledAttachment,
}
_MAX_PROBLEMS = 5  # per rejected line; the rest are counted


# --- what an import reports -------------------------------------------------------------


@dataclass(frozen=True)
class Rejected:
    """A line that was not stored, and why (``line 17: issues.title: Field required``)."""

    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass
class _Tally:
    """What writing some lines did (added to the report once they are committed)."""

    issues_stored: int = 0
    issues_inserted: int = 0
    issues_updated: int = 0
    issues_unchanged: int = 0
    comments_added: int = 0
    comments_removed: int = 0
    history_added: int = 0
    history_removed: int = 0
    attachments_added: int = 0
    attachments_removed: int = 0
    links_added: int = 0
    links_updated: int = 0

    def add(self, other: _Tally) -> None:
        for item in fields(_Tally):
            setattr(self, item.name, getattr(self, item.name) + getattr(other, item.name))


@dataclass
class ImportReport(_Tally):
    """What an import did so far: every figure counts committed work only.

    ``lines_read`` counts every line (blank, skipped and rejected ones too);
    ``issues_stored`` the lines stored; ``issues_inserted``/``updated``/``unchanged``
    the issue rows (the same ``issue_id`` twice in one batch counts once);
    ``*_added``/``*_removed`` the child rows written and deleted (an issue whose list
    did not change counts in neither); ``links_added``/``links_updated`` the crawl-session
    links. ``rejects`` holds the first ``keep_rejects`` rejected lines, ``rejected`` counts
    them all. ``last_committed_line``: every line up to it is done (stored or rejected).
    """

    source: str = ""
    session_id: int | None = None
    session_created: bool = False
    lines_read: int = 0
    blank_lines: int = 0
    skipped_lines: int = 0
    bytes_read: int = 0
    rejected: int = 0
    rejects: list[Rejected] = field(default_factory=list)
    batches: int = 0
    split_batches: int = 0
    last_committed_line: int = 0
    seconds: float = 0.0

    @property
    def lines_per_second(self) -> float:
        return self.lines_read / self.seconds if self.seconds > 0 else 0.0


class ImportFailed(ImsRepoError):
    """The import stopped: ``report`` says what was committed before it (chained to the
    error that stopped it)."""

    def __init__(self, message: str, report: ImportReport) -> None:
        super().__init__(message)
        self.report = report


# --- the import ---------------------------------------------------------------------------

Source = str | os.PathLike[str] | IO[bytes]
"""A path to a JSON Lines file, or a binary stream of one (e.g. ``sys.stdin.buffer``)."""


def import_file(
    target: Database | Session,
    source: Source,
    *,
    user_id: int | None = None,
    session_id: int | None = None,
    new_session: NewCrawlSession | Mapping[str, Any] | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    from_line: int = 1,
    keep_rejects: int = 100,
    on_progress: Callable[[ImportReport], None] | None = None,
    on_reject: Callable[[Rejected], None] | None = None,
) -> ImportReport:
    """Import crawled issues from JSON Lines into crawl session ``session_id``, or into a
    session created from ``new_session`` (the fields of ``NewCrawlSession``; ``user_id``
    defaults to the importing user; it is marked ``running``, then ``completed`` with
    ``total_issues`` or ``failed``). Exactly one of the two is required.

    ``target`` is a ``Database`` (a session with context ``user_id`` is opened) or an
    open ``Session`` (whose context must be ``user_id``, if given): the import commits
    after every batch, including anything the session had pending.

    ``from_line`` skips the lines before it (to resume after ``ImportFailed``);
    ``on_progress`` is called with the report after each committed batch, ``on_reject``
    with each rejected line, in line order, once its batch is committed.

    Raises ``NotFound`` (nothing imported) when the user does not exist or the session
    is not one the user can see, ``InvalidInput`` for bad arguments, and
    ``ImportFailed`` when the import stops part way.
    """
    _check_arguments(session_id, new_session, batch_size, from_line, keep_rejects)
    if isinstance(target, Session):
        if user_id is not None and target.user_id != user_id:
            raise InvalidInput(
                f"user_id={user_id} differs from the session's context ({target.user_id})"
            )
        if target.user_id is None:
            raise InvalidInput("the session needs a user context (db.session(user_id=…))")
        return _Import(
            target, source, target.user_id, batch_size, keep_rejects, on_progress, on_reject
        ).run(session_id, new_session, from_line)
    if user_id is None:
        raise InvalidInput("user_id is required: the user the import runs as")
    with target.session(user_id=user_id) as s:
        return _Import(s, source, user_id, batch_size, keep_rejects, on_progress, on_reject).run(
            session_id, new_session, from_line
        )


def _check_arguments(
    session_id: int | None,
    new_session: NewCrawlSession | Mapping[str, Any] | None,
    batch_size: int,
    from_line: int,
    keep_rejects: int,
) -> None:
    if (session_id is None) == (new_session is None):
        raise InvalidInput("give either session_id or new_session (exactly one)")
    if session_id is not None and (isinstance(session_id, bool) or not isinstance(session_id, int)):
        raise InvalidInput(f"session_id must be an int, not {session_id!r}")
    for name, value, least in (
        ("batch_size", batch_size, 1),
        ("from_line", from_line, 1),
        ("keep_rejects", keep_rejects, 0),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise InvalidInput(f"{name} must be an int ≥ {least}, not {value!r}")


@dataclass(frozen=True, slots=True)
class _Line:
    """A line that passed validation, ready to store."""

    number: int
    issue: NewIssue
    children: dict[str, list[dict[str, Any]]]  # kind -> items as JSON objects
    crawl_duration_ms: int | None


class _Import:
    """One run of ``import_file`` on one session."""

    def __init__(
        self,
        session: Session,
        source: Source,
        user_id: int,
        batch_size: int,
        keep_rejects: int,
        on_progress: Callable[[ImportReport], None] | None,
        on_reject: Callable[[Rejected], None] | None,
    ) -> None:
        self.s = session
        self.source = source
        self.user_id = user_id
        self.batch_size = batch_size
        self.keep_rejects = keep_rejects
        self.on_progress = on_progress
        self.on_reject = on_reject
        self.report = ImportReport(source=_source_name(source))
        self.session_id = 0
        self.in_flight: tuple[int, int] | None = None  # first and last line of the batch
        self.step = "issues"  # what _write is storing (for the server's refusals)

    def run(
        self,
        session_id: int | None,
        new_session: NewCrawlSession | Mapping[str, Any] | None,
        from_line: int,
    ) -> ImportReport:
        started = time.perf_counter()
        crawl = self._crawl_session(session_id, new_session)
        self.session_id = self.report.session_id = crawl.session_id
        self.s.commit()  # the new session (and anything pending) stands on its own
        try:
            with _open(self.source) as stream:
                for lines, good, rejects in _batches(
                    stream, self.batch_size, from_line, self.report
                ):
                    self.in_flight = lines
                    self._store_batch(good, rejects, lines[1])
                    self.in_flight = None
                    self.report.seconds = time.perf_counter() - started
                    if self.on_progress is not None:
                        self.on_progress(self.report)
            self.report.last_committed_line = self.report.lines_read
        except (Exception, KeyboardInterrupt) as error:
            self.report.seconds = time.perf_counter() - started
            self._roll_back_in_flight()
            interrupted = isinstance(error, KeyboardInterrupt)
            self._finish_session("cancelled" if interrupted else "failed")
            if interrupted:
                raise
            raise ImportFailed(self._failure(error), self.report) from error
        self.report.seconds = time.perf_counter() - started
        self._finish_session("completed")
        return self.report

    # --- the crawl session ----------------------------------------------------------

    def _crawl_session(
        self, session_id: int | None, new_session: NewCrawlSession | Mapping[str, Any] | None
    ) -> CrawlSession:
        if self.s.users.get(self.user_id) is None:
            raise NotFound(
                f"there is no user with user_id={self.user_id}; nothing was imported",
                table="users",
                key=str(self.user_id),
            )
        if new_session is not None:
            values = (
                new_session.model_dump(exclude_unset=True)
                if isinstance(new_session, NewCrawlSession)
                else dict(new_session)
            )
            values.setdefault("user_id", self.user_id)
            values.setdefault("status", "running")
            values.setdefault("started_at", datetime.now(UTC))
            if values["user_id"] != self.user_id:
                raise InvalidInput(
                    f"new_session.user_id={values['user_id']} is not the importing user "
                    f"({self.user_id})"
                )
            self.report.session_created = True
            return self.s.crawl_sessions.create(values)
        assert session_id is not None
        crawl = self.s.crawl_sessions.get(session_id)
        if crawl is None:
            raise NotFound(
                f"crawl session {session_id} is not visible to user {self.user_id} "
                "(it is another user's, or does not exist); nothing was imported",
                table="crawl_sessions",
                key=str(session_id),
            )
        return crawl

    def _finish_session(self, status: str) -> None:
        """Close a session this import created: its outcome, end time and issue count.
        Best effort after a failure (the connection may be the thing that failed)."""
        if not self.report.session_created:
            return
        try:
            crawl = self.s.crawl_sessions.get(self.session_id)
            now = datetime.now(UTC)
            started = crawl.started_at if crawl is not None and crawl.started_at else now
            self.s.crawl_sessions.update(
                self.session_id,
                status=status,
                completed_at=max(now, started),
                duration_seconds=int((max(now, started) - started).total_seconds()),
                total_issues=self.report.links_added,
            )
            self.s.commit()
        except (ImsRepoError, psycopg.Error):
            if status == "completed":
                raise

    def _roll_back_in_flight(self) -> None:
        """Undo the batch in flight, so the session is usable again (best effort: the
        connection may be the thing that failed)."""
        with suppress(ImsRepoError, psycopg.Error):
            self.s.rollback()

    def _failure(self, error: BaseException) -> str:
        done = self.report.last_committed_line
        message = f"import stopped after line {done}: {error}"
        if self.in_flight is not None:
            first, last = self.in_flight
            lines = f"lines {first} to {last}" if last > first else f"line {first}"
            message += f"; {lines} (the batch in flight) were rolled back"
        if done:
            return f"{message}; lines 1 to {done} are stored: resume with from_line={done + 1}"
        return f"{message}; nothing was stored"

    # --- batches --------------------------------------------------------------------

    def _store_batch(self, good: list[_Line], rejects: list[Rejected], last_line: int) -> None:
        tally, refused, splits = self._store(good)
        self.report.add(tally)
        self.report.batches += 1
        self.report.split_batches += splits
        for rejected in rejects:  # the server's refusals were logged by _store
            _log.warning("line %d rejected: %s", rejected.line, rejected.reason)
        for rejected in sorted([*rejects, *refused], key=lambda item: item.line):
            self.report.rejected += 1
            if len(self.report.rejects) < self.keep_rejects:
                self.report.rejects.append(rejected)
            if self.on_reject is not None:
                self.on_reject(rejected)
        self.report.last_committed_line = last_line

    def _store(self, lines: list[_Line]) -> tuple[_Tally, list[Rejected], int]:
        """Write and commit ``lines``; if the server refuses their data, roll back and
        store each half on its own, down to the one line it refuses."""
        if not lines:
            return _Tally(), [], 0
        try:
            tally = self._write(lines)
            self.s.commit()
            return tally, [], 0
        except (InvalidInput, Duplicate, ForeignKeyViolation) as error:
            self.s.rollback()
            sqlstate = getattr(error.__cause__, "sqlstate", None) or "none: refused before sending"
            if len(lines) == 1:
                _log.warning(
                    "line %d refused by the database (%s, SQLSTATE %s); the rest of its "
                    "batch is stored",
                    lines[0].number,
                    self.step,
                    sqlstate,
                )
                return _Tally(), [Rejected(lines[0].number, _refusal(error, self.step))], 0
            _log.info(
                "lines %d to %d refused by the database (%s, SQLSTATE %s): storing each half "
                "on its own to find the line",
                lines[0].number,
                lines[-1].number,
                self.step,
                sqlstate,
            )
        half = len(lines) // 2
        first, refused_first, splits_first = self._store(lines[:half])
        second, refused_second, splits_second = self._store(lines[half:])
        first.add(second)
        return first, refused_first + refused_second, 1 + splits_first + splits_second

    def _write(self, lines: list[_Line]) -> _Tally:
        """Store ``lines`` in the current transaction (the caller commits)."""
        s = self.s
        tally = _Tally(issues_stored=len(lines))
        self.step = "issues"
        upserted = s.issues.upsert_many([line.issue for line in lines], batch_size=len(lines))
        tally.issues_inserted = upserted.inserted
        tally.issues_updated = upserted.updated
        tally.issues_unchanged = upserted.unchanged

        # The later line wins, for the link and for each list it carries.
        last: dict[str, _Line] = {}
        lists: dict[str, dict[str, list[dict[str, Any]]]] = {kind: {} for kind in _CHILD_MODELS}
        durations: dict[str, int] = {}
        for line in lines:
            issue_id = line.issue.issue_id
            last[issue_id] = line
            for kind, items in line.children.items():
                lists[kind][issue_id] = items
            if line.crawl_duration_ms is not None:
                durations[issue_id] = line.crawl_duration_ms
        # The children and links below need no lock of their own: upsert_many took these
        # issues' locks in this transaction, and they are held until it ends (see
        # issues.py).

        for kind, statement, param in (
            ("comments", REPLACE_COMMENTS, "comments"),
            ("history", REPLACE_HISTORY, "changes"),
            ("attachments", REPLACE_ATTACHMENTS, "attachments"),
        ):
            if not lists[kind]:
                continue
            self.step = kind
            extra = {"session_id": self.session_id} if kind == "attachments" else {}
            done = self._replace(statement, param, lists[kind], extra)
            setattr(tally, f"{kind}_added", done.added)
            setattr(tally, f"{kind}_removed", done.removed)

        self.step = "crawl-session links"
        links = [
            {
                "issue_id": issue_id,
                "crawl_order": line.number,
                "crawl_duration_ms": durations.get(issue_id),
            }
            for issue_id, line in last.items()
        ]
        bound = LINK_ISSUES.bind({"session_id": self.session_id, "links": Jsonb(links)})
        linked = s.fetch_one(bound, ImportLinked)
        assert linked is not None  # an aggregate always returns one row
        if linked.sessions == 0:
            raise NotFound(
                f"crawl session {self.session_id} is no longer visible to user "
                f"{self.user_id} (deleted while importing?)",
                table="crawl_sessions",
                key=str(self.session_id),
            )
        tally.links_added = linked.linked
        tally.links_updated = linked.relinked
        return tally

    def _replace(
        self,
        statement: Statement,
        param: str,
        lists: dict[str, list[dict[str, Any]]],
        extra: dict[str, Any],
    ) -> ImportReplaced:
        items = [
            {"issue_id": issue_id, **item}
            for issue_id, issue_items in lists.items()
            for item in issue_items
        ]
        params = {"issue_ids": list(lists), param: Jsonb(items)}
        done = self.s.fetch_one(statement.bind({**params, **extra}), ImportReplaced)
        assert done is not None  # an aggregate always returns one row
        return done


def _refusal(error: ImsRepoError, step: str) -> str:
    """The server's reason for refusing a line, and which part of it was being stored."""
    cause = error.__cause__
    if isinstance(cause, psycopg.Error) and cause.diag.message_primary:
        detail = f" ({cause.diag.message_detail})" if cause.diag.message_detail else ""
        return f"refused by the database ({step}): {cause.diag.message_primary}{detail}"
    return f"refused by the database ({step}): {error}"


# --- reading the file ---------------------------------------------------------------------


@contextmanager
def _open(source: Source) -> Iterator[IO[bytes]]:
    if isinstance(source, str | os.PathLike):
        with open(source, "rb") as stream:
            yield stream
    else:
        yield source


def _source_name(source: Source) -> str:
    if isinstance(source, str | os.PathLike):
        return os.fspath(source)
    return str(getattr(source, "name", "<stream>"))


def _batches(
    stream: IO[bytes], size: int, from_line: int, report: ImportReport
) -> Iterator[tuple[tuple[int, int], list[_Line], list[Rejected]]]:
    """The file's lines in batches of up to ``size`` non-blank lines: the batch's first
    and last line numbers, its valid lines and its rejected ones (never both empty)."""
    good: list[_Line] = []
    rejects: list[Rejected] = []
    first = from_line
    for number, raw in enumerate(stream, 1):
        report.lines_read += 1
        report.bytes_read += len(raw)
        if number < from_line:
            report.skipped_lines += 1
            continue
        parsed = parse_line(number, raw)
        if parsed is None:
            report.blank_lines += 1
        elif isinstance(parsed, Rejected):
            rejects.append(parsed)
        else:
            good.append(parsed)
        if len(good) + len(rejects) >= size:
            yield (first, number), good, rejects
            good, rejects = [], []
            first = number + 1
    if good or rejects:
        yield (first, report.lines_read), good, rejects


def parse_line(number: int, raw: bytes) -> _Line | Rejected | None:
    """Line ``number`` of the file as an issue to store, a ``Rejected`` saying why it
    cannot be stored, or None for a blank line."""
    if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]  # a UTF-8 byte-order mark some editors write
    try:
        text = raw.decode("utf-8").rstrip("\r\n")  # columns of JSON errors stay on the line
    except UnicodeDecodeError as error:
        return Rejected(number, f"not UTF-8: byte {error.start + 1} is {raw[error.start]:#04x}")
    if not text.strip():
        return None
    try:
        document = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as error:
        reason = error.msg.removesuffix(" at")  # "Invalid control character at"
        return Rejected(number, f"not JSON: {reason} (column {error.colno})")
    except RecursionError:
        return Rejected(number, "not JSON: nested too deeply")
    except ValueError as error:  # NaN, Infinity; integers too long to convert
        return Rejected(number, f"not JSON: {error}")
    if not isinstance(document, dict):
        return Rejected(number, f"not a JSON object but {_json_kind(document)}")
    try:
        return _validate(number, document)
    except RecursionError:
        return Rejected(number, "nested too deeply")


def _validate(number: int, document: dict[str, Any]) -> _Line | Rejected:
    problems: list[str] = []
    lists: dict[str, Any] = {kind: document.pop(kind) for kind in _CHILD_MODELS if kind in document}
    duration: Any = document.pop("crawl_duration_ms", None)
    issue: NewIssue | None = None
    try:
        issue = NewIssue.model_validate(document)
    except ValidationError as error:
        problems.extend(_problems("issues", error))
    children: dict[str, list[dict[str, Any]]] = {}
    for kind, items in lists.items():
        if not isinstance(items, list):
            problems.append(f"{kind}: must be an array of objects, not {_json_kind(items)}")
            continue
        checked: list[dict[str, Any]] = []
        children[kind] = checked
        for index, item in enumerate(items):
            where = f"{kind}[{index}]"
            if isinstance(item, dict) and "issue_pk" in item:
                problems.append(f"{where}.issue_pk: not allowed (the line's issue is meant)")
                continue
            try:
                valid = _CHILD_MODELS[kind].model_validate(item)
            except ValidationError as error:
                problems.extend(_problems(where, error))
                continue
            checked.append(valid.model_dump(mode="json", exclude={"issue_pk"}))
    crawl_duration_ms: int | None = None
    if duration is not None:
        try:
            crawl_duration_ms = _DURATION.validate_python(duration)
        except ValidationError as error:
            problems.extend(_problems("crawl_duration_ms", error))
    if problems or issue is None:
        shown = problems[:_MAX_PROBLEMS]
        if len(problems) > _MAX_PROBLEMS:
            shown.append(f"and {len(problems) - _MAX_PROBLEMS} more")
        return Rejected(number, "; ".join(shown))
    return _Line(number, issue, children, crawl_duration_ms)


def _problems(prefix: str, error: ValidationError) -> list[str]:
    found = []
    for item in error.errors(include_url=False):
        loc = ".".join(str(part) for part in item["loc"])
        found.append(f"{prefix}.{loc}: {item['msg']}" if loc else f"{prefix}: {item['msg']}")
    return found


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return "a number"


def summary(report: ImportReport) -> list[str]:
    """The report as the command prints it."""
    crawl = f"crawl session {report.session_id}" + (" (new)" if report.session_created else "")
    lines = [
        f"read {report.lines_read} lines from {report.source} into {crawl} "
        f"in {report.seconds:.1f} s ({report.lines_per_second:,.0f} lines/s)",
        f"issues: {report.issues_stored} stored ({report.issues_inserted} inserted, "
        f"{report.issues_updated} updated, {report.issues_unchanged} unchanged), "
        f"{report.rejected} rejected, {report.blank_lines} blank lines"
        + (f", {report.skipped_lines} skipped" if report.skipped_lines else ""),
        f"comments: {report.comments_added} added, {report.comments_removed} removed; "
        f"history: {report.history_added} added, {report.history_removed} removed; "
        f"attachments: {report.attachments_added} added, {report.attachments_removed} removed",
        f"links: {report.links_added} added, {report.links_updated} updated",
    ]
    if report.rejects:
        more = report.rejected - len(report.rejects)
        lines.append("rejected lines" + (f" (first {len(report.rejects)}):" if more else ":"))
        lines.extend(f"  {rejected}" for rejected in report.rejects)
        if more:
            lines.append(f"  … and {more} more")
    return lines
