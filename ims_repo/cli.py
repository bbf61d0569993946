"""The ``ims-repo`` command line.

Every command takes ``--database URL`` (default ``IMS_DATABASE_URL``, else libpq's
``PG*`` variables). Commands are plain click commands on the ``main`` group; other
modules add theirs with ``@main.command()`` (and read the URL with
:func:`database_option` and :func:`database_url`) or ``main.add_command(...)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click
import psycopg

from ims_repo import migrations

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


@click.group(name="ims-repo", context_settings={"help_option_names": ["-h", "--help"]})
@database_option
def main() -> None:
    """IMS crawler database: migrations, roles and named SQL statements."""


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
    """Create (or fix up) login NAME as a runtime login: LOGIN, member of ims_app."""
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
def demo() -> None:
    """Migrate, load a small data set and walk through the layer, printing each step."""
    from ims_repo import demo as demo_module
    from ims_repo.errors import ImsRepoError

    try:
        with errors_as_click():
            demo_module.run(database_url(), echo=click.echo)
    except ImsRepoError as error:
        raise click.ClickException(str(error)) from error
