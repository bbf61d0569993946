"""The ``ims-repo`` command line.

``ims-repo --version`` prints the installed version; ``python -m ims_repo`` is the same
command. Every command takes ``--database URL`` (default ``IMS_DATABASE_URL``, else libpq's
``PG*`` variables). Commands are plain click commands on the ``main`` group; other
modules add theirs with ``@main.command()`` (and read the URL with
:func:`database_option` and :func:`database_url`) or ``main.add_command(...)``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from functools import partial
from pathlib import Path
from typing import Any, TextIO, TypeVar

import click
import psycopg
from click.shell_completion import CompletionItem

from ims_repo.core.errors import ImsRepoError, UnsafeLogin
from ims_repo.core.loader import Statement
from ims_repo.db import Database
from ims_repo.services import migrations
from ims_repo.services.checks import Problem
from ims_repo.services.importer import (
    DEFAULT_BATCH_SIZE,
    SHOWN_REJECTS,
    ImportFailed,
    ImportReport,
    Source,
    import_file,
    summary,
)

__all__ = ["database_option", "database_url", "errors_as_click", "main"]

F = TypeVar("F", bound=Callable[..., Any])


def database_option(func: F) -> F:
    """The ``--database URL`` option every command takes (stored in ``ctx.obj``).

    Accepted on the group and on each command; the value given last wins. There is no
    click ``envvar``: the fallback to ``IMS_DATABASE_URL`` happens in
    :func:`database_url`, so an environment value never overrides an explicit option.
    """

    def remember(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
        if value is not None:
            ctx.ensure_object(dict)["database"] = value
        return value

    return click.option(
        "--database",
        "database",
        metavar="URL",
        default=None,
        expose_value=False,
        is_eager=True,
        callback=remember,
        help="libpq connection URL [default: $IMS_DATABASE_URL, else the PG* variables].",
    )(func)


def database_url(ctx: click.Context | None = None) -> str:
    """The database URL given to the group or the current command (or the env fallback)."""
    ctx = ctx or click.get_current_context()
    obj = ctx.find_object(dict)
    explicit = obj.get("database") if obj else None
    return migrations.database_url(explicit)


@contextmanager
def errors_as_click() -> Iterator[None]:
    """Turn expected failures into a clear message and exit status 1 (no traceback)."""
    try:
        yield
    except psycopg.Error as exc:
        message = str(exc).strip() or type(exc).__name__
        raise click.ClickException(f"database error: {message}") from exc
    except (ValueError, LookupError, migrations.MigrationError) as exc:
        raise click.ClickException(str(exc)) from exc


class _StderrHandler(logging.Handler):
    """ims_repo's log records on standard error, through click (as the command's output)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            click.echo(self.format(record), err=True)
        except Exception:  # pragma: no cover - logging must never break the command
            self.handleError(record)


def _show_logs(level: str) -> None:
    """Show the ``ims_repo`` loggers' records at ``level`` and above on standard error
    for the rest of this command (the library itself only has a NullHandler)."""
    logger = logging.getLogger("ims_repo")
    handler = _StderrHandler(level.upper())
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    previous = logger.level
    if logger.getEffectiveLevel() > handler.level:
        logger.setLevel(handler.level)
    logger.addHandler(handler)

    def restore() -> None:
        logger.removeHandler(handler)
        logger.setLevel(previous)

    click.get_current_context().call_on_close(restore)


@click.group(name="ims-repo", context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ims-repo", prog_name="ims-repo")
@database_option
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
    default="warning",
    show_default=True,
    help="Show ims_repo's log records from this level on, on standard error: lost "
    "connections, retried writes, rejected import lines (warning); how the importer "
    "narrows a refused batch (info).",
)
def main(log_level: str) -> None:
    """IMS crawler database: migrations, roles and named SQL statements."""
    _show_logs(log_level)


@main.command()
@database_option
def migrate() -> None:
    """Apply every pending migration."""
    with errors_as_click():
        applied = migrations.migrate(database_url())
    if applied:
        for migration_id in applied:
            click.echo(f"applied {migration_id}")
        click.echo(f"{len(applied)} migration(s) applied")
    else:
        click.echo("nothing to apply: the schema is up to date")


@main.command()
@database_option
@click.option(
    "--count",
    "count",
    type=click.IntRange(min=1),
    default=None,
    help="Roll back the last N applied migrations [default: 1].",
)
@click.option("--all", "all_", is_flag=True, help="Roll back every applied migration.")
def rollback(count: int | None, all_: bool) -> None:
    """Roll back the most recent migration (or --count N, or --all)."""
    if all_ and count is not None:
        raise click.UsageError("give either --count or --all, not both")
    with errors_as_click():
        undone = migrations.rollback(database_url(), None if all_ else (count or 1))
    if undone:
        for migration_id in undone:
            click.echo(f"rolled back {migration_id}")
        click.echo(f"{len(undone)} migration(s) rolled back")
    else:
        click.echo("nothing to roll back")


@main.command()
@database_option
def status() -> None:
    """List the migrations and whether each is applied."""
    with errors_as_click():
        rows = migrations.status(database_url())
    for migration_id, applied in rows:
        click.echo(f"{'applied' if applied else 'pending':8} {migration_id}")
    pending = sum(1 for _, applied in rows if not applied)
    click.echo(f"{len(rows) - pending} applied, {pending} pending")
    from ims_repo.services.migration_lock import lock_holder

    with errors_as_click():
        holder = lock_holder(database_url())
    if holder is not None:
        click.echo(f"locked by {holder} (if that run has died: ims-repo break-lock)")


@main.command("grant-login")
@database_option
@click.argument("name")
@click.option(
    "--password",
    is_flag=False,
    flag_value="",
    default=None,
    help="Set this password; --password alone prompts for it (keeps it out of shell history).",
)
def grant_login(name: str, password: str | None) -> None:
    """Create (or fix up) login NAME as a runtime login: LOGIN, member of ims_app.

    A password is sent as its SCRAM-SHA-256 verifier, computed here: the plaintext never
    reaches the server (nor its log).
    """
    if password == "":
        password = click.prompt("password", hide_input=True, confirmation_prompt=True)
    with errors_as_click():
        migrations.grant_login(database_url(), name, password)
    click.echo(f"login {name} is a member of {migrations.APP_ROLE} (runtime role)")


@main.command("set-role")
@database_option
@click.argument("username")
@click.argument("role", type=click.Choice(migrations.USER_ROLES))
def set_role(username: str, role: str) -> None:
    """Make USERNAME an admin or an ordinary user (the owner's path)."""
    with errors_as_click():
        migrations.set_role(database_url(), username, role)
    click.echo(f"user {username} now has role {role}")


@main.command()
@database_option
@click.option(
    "--private-server",
    is_flag=True,
    help="Run on a private PostgreSQL started from the local binaries (data in .ims-pg/), "
    "as when no server is configured or the configured one does not answer.",
)
def demo(private_server: bool) -> None:
    """Migrate, load a small data set and walk through the layer, printing each step."""
    from ims_repo.core.errors import ImsRepoError
    from ims_repo.services import demo as demo_module

    try:
        with errors_as_click():
            demo_module.run(database_url(), echo=click.echo, private_server=private_server)
    except ImsRepoError as error:
        raise click.ClickException(str(error)) from error


# --- for DBAs: the named statements ---------------------------------------------------


def _complete_statement(
    _ctx: click.Context, _param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """Shell completion of a statement NAME: every ``file.name`` (and a bare ``name``
    only one file has) starting with what was typed, each with its comment's first
    sentence as help."""
    from ims_repo.core import loader

    every = [s for f in loader.packaged_files() for s in f.statements.values()]
    counts = Counter(statement.name for statement in every)
    items: dict[str, str] = {}
    for statement in every:
        names = [statement.label] + ([statement.name] if counts[statement.name] == 1 else [])
        for name in names:
            if name.startswith(incomplete):
                items.setdefault(name, _first_sentence(statement.doc))
    return [CompletionItem(name, help=text) for name, text in sorted(items.items())]


_FORMAT = click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: one JSON document on standard output, for tools and CI.",
)


def _statement_json(statement: Statement) -> dict[str, Any]:
    """A statement as ``queries --format json`` shows it (a documented, stable shape)."""
    return {
        "name": statement.label,
        "file": statement.file,
        "line": statement.line,
        "kind": statement.kind.value,
        "doc": statement.doc,
        "params": list(statement.params),
        "slots": list(statement.slots),
        "read_only": statement.read_only,
        "sql": statement.sql,
    }


@main.command()
@database_option
@click.argument("name", required=False, shell_complete=_complete_statement)
@_FORMAT
def queries(name: str | None, output_format: str) -> None:
    """List every named statement, or print statement NAME as written.

    NAME is file.name (users.get_by_username) or a name only one file has
    (get_by_username). Needs no database. With --format json: a list of statements
    (one object for NAME) with name, file, line, kind, doc, params, slots, read_only
    and sql.
    """
    from ims_repo.core import loader

    files = loader.packaged_files()
    if name is None:
        every = [s for query_file in files for s in query_file.statements.values()]
        if output_format == "json":
            click.echo(json.dumps([_statement_json(s) for s in every], indent=2))
            return
        rows = [
            (statement.label, f":{statement.kind.value}", statement.location, statement.doc)
            for statement in every
        ]
        widths = [max(len(row[column]) for row in rows) for column in range(3)]
        for label, kind, location, doc in rows:
            click.echo(
                f"{label:{widths[0]}}  {kind:{widths[1]}}  {location:{widths[2]}}  "
                f"{_first_sentence(doc)}"
            )
        click.echo(f"{len(rows)} statements in {len(files)} files")
        return
    from ims_repo.services.explain import find_statement

    with errors_as_click():
        statement = find_statement(name, files)
    if output_format == "json":
        click.echo(json.dumps(_statement_json(statement), indent=2))
        return
    path = loader.load(Path(statement.file).stem).path
    click.echo(f"-- {_shown_path(path)}:{statement.line}")
    click.echo(_as_written(path, statement.line))


@main.command()
@database_option
@click.argument("name", shell_complete=_complete_statement)
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="Use VALUE (text, cast by the server) for parameter :NAME; repeatable.",
)
@click.option("--null", "nulls", multiple=True, metavar="NAME", help="Pass NULL for :NAME.")
@click.option(
    "--user",
    "user_id",
    type=int,
    default=None,
    metavar="ID",
    help="Plan in this user's RLS context (ims.set_current_user) [default: none].",
)
@click.option(
    "--analyze",
    is_flag=True,
    help="EXPLAIN (ANALYZE, BUFFERS): run it, in a transaction that is rolled back.",
)
@_FORMAT
def explain(
    name: str,
    params: tuple[str, ...],
    nulls: tuple[str, ...],
    user_id: int | None,
    analyze: bool,
    output_format: str,
) -> None:
    """Show the plan of statement NAME, as the runtime role ims_app.

    Parameters get sample values (an existing key where there is one, else a value of
    the parameter's type) unless given; {filters} and {order_by} take their defaults.
    Nothing persists: the transaction is always rolled back. With --format json the
    output is EXPLAIN (FORMAT JSON)'s document alone, as pev2 / explain.dalibo.com read
    it (the circumstances go to standard error).
    """
    from ims_repo.core.errors import ImsRepoError
    from ims_repo.services import explain as explaining

    given: dict[str, str | None] = {}
    for item in params:
        key, sep, value = item.partition("=")
        if not sep or not key.strip(":"):
            raise click.BadParameter(f"{item!r} is not NAME=VALUE", param_hint="--param")
        given[key.strip(":")] = value
    given.update({key.strip(":"): None for key in nulls})
    as_json = output_format == "json"
    try:
        with errors_as_click():
            statement = explaining.find_statement(name)
            result = explaining.explain(
                database_url(),
                statement,
                params=given,
                user_id=user_id,
                analyze=analyze,
                json=as_json,
            )
    except ImsRepoError as error:
        raise click.ClickException(str(error)) from error
    say = partial(click.echo, err=as_json)
    say(f"-- {statement.label} ({statement.location}) :{statement.kind.value}")
    say(f"-- as role {result.role} (login {result.login}); context: {result.context}")
    for line in explaining.describe_samples(result.samples):
        say(f"-- {line}")
    if statement.slots:
        from ims_repo.core.loader import SLOT_DEFAULTS

        slots = ", ".join(f"{{{slot}}} = {SLOT_DEFAULTS[slot]}" for slot in statement.slots)
        say(f"-- {slots} (defaults)")
    if result.analyzed:
        say("-- EXPLAIN (ANALYZE, BUFFERS): it ran, in a transaction rolled back after")
    else:
        say("-- EXPLAIN: planned, not run")
    for line in result.plan:
        click.echo(line)


@main.command()
@database_option
@click.option(
    "--plans",
    is_flag=True,
    help="Also plan every statement on a user-owned table for an ordinary user (with "
    "enable_seqscan off) and report any that reads a whole user-owned table.",
)
@click.option(
    "--user",
    "user_id",
    type=int,
    default=None,
    metavar="ID",
    help="The ordinary user --plans plans for [default: the first non-admin user].",
)
@click.option(
    "--citus",
    is_flag=True,
    help="Also report statements on the user_id-distributed tables (docs/SCALING.md) "
    "that neither filter nor join on user_id: multi-shard under Citus.",
)
@click.option(
    "--file",
    "extra_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    metavar="PATH",
    help="Check this application .sql file too (ims_repo.QueryFile); repeatable.",
)
@_FORMAT
def check(
    plans: bool,
    user_id: int | None,
    citus: bool,
    extra_files: tuple[str, ...],
    output_format: str,
) -> None:
    """Verify the statements and the row-level security of the live schema.

    Statements: each is parsed, described and planned (never run) as the runtime role
    and compared with the record it fills. Security: RLS enabled and forced on every
    table; on each user-owned table a policy for ims_app with USING and WITH CHECK,
    comparing user_id with the context read once, in (SELECT ...); no SECURITY DEFINER
    function without a fixed search_path; no grant to ims_app beyond what the
    statements need (docs/SECURITY.md lists every rule). Exits 1 on any problem, each
    named by file:line or by the database object.

    --format json prints {"ok", "role", "checks", "statements", "problems": [{"check",
    "location", "object", "message"}]}; location is file:line or null.
    """
    from ims_repo.core import loader
    from ims_repo.core.errors import ImsRepoError
    from ims_repo.services.checks import RUNTIME_ROLE, check_statements
    from ims_repo.services.security_checks import check_security

    url = database_url()
    app_files = [loader.QueryFile(path) for path in extra_files]
    files = [*loader.packaged_files(), *app_files]
    problems: list[dict[str, Any]] = []
    checks = ["statements", "security"]
    try:
        with errors_as_click():
            found = check_statements(url)
            if app_files:
                found += check_statements(url, app_files)
            problems += [_problem_json("statement", p) for p in found]
            problems += [
                {"check": f.check, "location": None, "object": f.object, "message": f.message}
                for f in check_security(url, files)
            ]
            if plans:
                from ims_repo.services.plan_checks import check_plans

                checks.append("plans")
                problems += [
                    _problem_json("plan", p) for p in check_plans(url, files, user_id=user_id)
                ]
            if citus:
                from ims_repo.services.citus_checks import check_distribution

                checks.append("citus")
                problems += [_problem_json("citus", p) for p in check_distribution(files)]
    except ImsRepoError as error:
        raise click.ClickException(str(error)) from error
    count = sum(len(query_file.statements) for query_file in files)
    if output_format == "json":
        document = {
            "ok": not problems,
            "role": RUNTIME_ROLE,
            "checks": checks,
            "statements": count,
            "problems": problems,
        }
        click.echo(json.dumps(document, indent=2))
        if problems:
            click.get_current_context().exit(1)
        return
    for problem in problems:
        where = f"{problem['location']}: " if problem["location"] else ""
        click.echo(f"{where}{problem['object']}: {problem['message']}")
    if problems:
        raise click.ClickException(
            f"{len(problems)} problem(s) in {count} statements and the schema "
            f"(checked {', '.join(checks)} as role {RUNTIME_ROLE})"
        )
    click.echo(f"{count} statements OK (checked as role {RUNTIME_ROLE})")
    click.echo(
        f"row-level security OK: tables, policies, definer functions, grants of {RUNTIME_ROLE}"
    )
    if plans:
        click.echo("plans OK: no statement reads a whole user-owned table for an ordinary user")
    if citus:
        click.echo("citus OK: every statement on a distributed table filters on user_id")


def _problem_json(check: str, problem: Problem) -> dict[str, Any]:
    return {
        "check": check,
        "location": problem.location,
        "object": problem.statement,
        "message": problem.message,
    }


@main.command("break-lock")
@database_option
def break_lock() -> None:
    """Remove the migration lock left by a crashed migrate or rollback.

    yoyo keeps its lock as a row of its table yoyo_lock; a run killed mid-way leaves it
    and every later run waits, then fails. Break it only when that run is dead.
    """
    from ims_repo.services import migration_lock

    with errors_as_click():
        holder = migration_lock.break_lock(database_url())
    click.echo(f"removed the migration lock held by {holder}")


def _first_sentence(doc: str) -> str:
    """The comment's first sentence (not cut at "e.g." or "i.e.")."""
    match = re.match(r"(.+?(?<!\be\.g)(?<!\bi\.e)[.!?])(?:\s|$)", doc)
    return match.group(1) if match else doc


def _shown_path(path: Path) -> str:
    """``path`` relative to the working directory when it lies below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _as_written(path: Path, header_line: int) -> str:
    """The file's text from the header at ``header_line`` to the next header."""
    lines = path.read_text(encoding="utf-8").splitlines()[header_line - 1 :]
    end = next(
        (index for index, text in enumerate(lines[1:], 1) if re.match(r"--\s*name:", text)),
        len(lines),
    )
    return "\n".join(lines[:end]).rstrip()


# --- ims-repo import (ims_repo.services.importer) ------------------------------------



def _new_session_fields(
    session_id: int | None, new_session: bool, product: str | None, query: str | None
) -> dict[str, Any] | None:
    if new_session == (session_id is not None):
        raise click.UsageError("give either --session ID or --new-session (exactly one)")
    if not new_session:
        if product is not None or query is not None:
            raise click.UsageError("--product and --query go with --new-session")
        return None
    if product is None or query is None:
        raise click.UsageError("--new-session needs --product and --query")
    return {"product": product, "original_query": query}


@main.command("refresh-search")
@database_option
@click.option(
    "--batch-size",
    default=10_000,
    show_default=True,
    type=click.IntRange(1, 1_000_000),
    help="Issues refreshed (and committed) per transaction.",
)
def refresh_search(batch_size: int) -> None:
    """Compute the search rank bounds of the issues written since the last refresh.

    Writing an issue does not compute them (migration 0011: it was the largest part of
    an insert's cost); until a refresh, a broad search ranks each such issue itself:
    the same hits, slower as the backlog grows. Run it after a bulk ingest or from a
    periodic job. It commits after every batch, never waits for a lock (issues being
    written are left for the next run), and stops when a batch comes back short; that
    last batch leaves the tables as autovacuum would (migration 0012: the bounds index's
    pending list merged, the statistics of the emptied backlog refreshed).
    """
    total = 0
    with errors_as_click(), _open_database(database_url(), None, "ims_repo refresh") as db:
        while True:
            with db.session() as s:
                done = s.search.refresh_bounds(batch_size)
            total += done
            if done < batch_size:
                break
    click.echo(f"refreshed the rank bounds of {total} issues")


@contextmanager
def _open_database(
    url: str, act_as: str | None, name: str = "ims_repo import"
) -> Iterator[Database]:
    """The database as the login, or as ``act_as``; a login that bypasses row-level
    security (a superuser) acts as the runtime role, since the layer refuses it."""
    options: dict[str, Any] = {"min_size": 1, "max_size": 1, "name": name}
    try:
        db = Database(url, act_as=act_as, **options)
    except UnsafeLogin:
        if act_as is not None:
            raise
        click.echo(
            f"note: the login bypasses row-level security; acting as {migrations.APP_ROLE}",
            err=True,
        )
        db = Database(url, act_as=migrations.APP_ROLE, **options)
    with db:
        yield db


@contextmanager
def _progress(file: str) -> Iterator[Callable[[ImportReport], None] | None]:
    """A progress bar over the file's bytes, on a terminal only (not in CI or a pipe)."""
    stream = sys.stderr
    if file == "-" or not stream.isatty():
        yield None
        return
    with click.progressbar(
        length=os.path.getsize(file), label="importing", file=stream, show_eta=True
    ) as bar:
        shown = 0

        def advance(report: ImportReport) -> None:
            nonlocal shown
            bar.update(report.bytes_read - shown)
            shown = report.bytes_read

        yield advance


def _echo_summary(report: ImportReport, rejects_path: str | None) -> None:
    for line in summary(report):
        click.echo(line)
    if rejects_path is not None and report.rejected:
        click.echo(f"all {report.rejected} rejected lines are in {rejects_path}")


@click.command("import")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--user", "user_id", type=int, required=True, help="Import as this user_id.")
@click.option("--session", "session_id", type=int, help="Link the issues to this crawl session.")
@click.option(
    "--new-session", is_flag=True, help="Create a crawl session (with --product and --query)."
)
@click.option("--product", help="Product of the new session.")
@click.option("--query", help="Original query of the new session.")
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=DEFAULT_BATCH_SIZE,
    show_default=True,
    help="Lines per transaction.",
)
@click.option(
    "--from-line",
    type=click.IntRange(min=1),
    default=1,
    help="Skip the lines before this one (resume a stopped import).",
)
@click.option(
    "--rejects",
    "rejects_path",
    type=click.Path(dir_okay=False, writable=True),
    help="Write every rejected line ('line N: reason') to this file.",
)
@click.option(
    "--act-as",
    metavar="ROLE",
    help="Run as this role [default: the login; ims_app if the login bypasses RLS].",
)
def import_command(
    file: str,
    user_id: int,
    session_id: int | None,
    new_session: bool,
    product: str | None,
    query: str | None,
    batch_size: int,
    from_line: int,
    rejects_path: str | None,
    act_as: str | None,
) -> None:
    """Import crawled issues from FILE (JSON Lines; '-' reads standard input).

    One issue a line, with optional comments, history and attachments arrays. Bad lines
    are reported (and skipped); the others are stored in transactions of --batch-size
    lines. Exit status: 0 all stored, 3 some lines rejected, 1 stopped.
    """
    new = _new_session_fields(session_id, new_session, product, query)
    if file != "-" and not os.path.isfile(file):
        raise click.BadParameter(f"{file!r} is not a file", param_hint="FILE")
    with ExitStack() as stack:
        try:
            db = stack.enter_context(_open_database(database_url(), act_as))
        except (ImsRepoError, psycopg.Error) as error:
            raise click.ClickException(str(error).strip()) from error
        reject_file: TextIO | None = None
        if rejects_path is not None:
            reject_file = stack.enter_context(open(rejects_path, "w", encoding="utf-8"))
        source: Source = sys.stdin.buffer if file == "-" else file
        progress = stack.enter_context(_progress(file))
        try:
            report = import_file(
                db,
                source,
                user_id=user_id,
                session_id=session_id,
                new_session=new,
                batch_size=batch_size,
                from_line=from_line,
                keep_rejects=SHOWN_REJECTS,
                on_progress=progress,
                on_reject=(lambda line: print(line, file=reject_file)) if reject_file else None,
            )
        except ImportFailed as error:
            _echo_summary(error.report, rejects_path)
            done = error.report
            if done.last_committed_line:
                click.echo(
                    f"to resume: ims-repo import {file} --user {user_id} "
                    f"--session {done.session_id} --from-line {done.last_committed_line + 1}",
                    err=True,
                )
            raise click.ClickException(str(error)) from error
        except ImsRepoError as error:
            raise click.ClickException(str(error)) from error
    _echo_summary(report, rejects_path)
    if report.rejected:
        click.get_current_context().exit(3)


main.add_command(database_option(import_command))
