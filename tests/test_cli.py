"""The ``ims-repo`` commands of ims_repo.faces.cli, through click's CliRunner, on a scratch DB."""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib.metadata
import secrets
import subprocess
import sys
from collections.abc import Iterator

import psycopg
import pytest
from _scratch import drop_role, new_role_name, scratch_database, url_for
from click.testing import CliRunner, Result
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from test_migrations import ALL_IDS

from ims_repo.faces.cli import main
from ims_repo.services import migrations
from tests.conftest import PrivateServer


@pytest.fixture
def db() -> Iterator[str]:
    """An empty scratch database; yields its connection string (superuser)."""
    with scratch_database() as name:
        yield url_for(name)


@pytest.fixture
def migrated(db: str) -> str:
    migrations.migrate(db)
    with psycopg.connect(db) as conn:
        conn.execute(
            "INSERT INTO ims.users (username, email) VALUES ('yijae.shin', 'yijae@example.com')"
        )
    return db


def conninfo_dbname(url: str) -> str:
    return str(conninfo_to_dict(url)["dbname"])


def run(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env, input=input, catch_exceptions=False)


def test_help_lists_the_commands() -> None:
    result = run("--help")
    assert result.exit_code == 0
    for command in ("migrate", "rollback", "status", "grant-login", "set-role"):
        assert command in result.output


def test_migrate_status_rollback(db: str) -> None:
    result = run("status", "--database", db)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [f"pending  {i}" for i in ALL_IDS] + [
        f"0 applied, {len(ALL_IDS)} pending"
    ]

    result = run("migrate", "--database", db)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [f"applied {i}" for i in ALL_IDS] + [
        f"{len(ALL_IDS)} migration(s) applied"
    ]

    result = run("migrate", "--database", db)
    assert result.exit_code == 0
    assert "nothing to apply" in result.output

    result = run("status", "--database", db)
    assert result.output.splitlines()[-1] == f"{len(ALL_IDS)} applied, 0 pending"

    result = run("rollback", "--database", db)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"rolled back {ALL_IDS[-1]}",
        "1 migration(s) rolled back",
    ]

    result = run("rollback", "--count", "2", "--database", db)
    assert result.output.splitlines()[:2] == [f"rolled back {i}" for i in ALL_IDS[-2:-4:-1]]

    result = run("rollback", "--all", "--database", db)
    assert result.exit_code == 0
    assert result.output.splitlines() == [
        *(f"rolled back {i}" for i in reversed(ALL_IDS[:-3])),
        f"{len(ALL_IDS) - 3} migration(s) rolled back",
    ]
    assert migrations.status(db) == [(i, False) for i in ALL_IDS]

    result = run("rollback", "--database", db)
    assert result.exit_code == 0
    assert "nothing to roll back" in result.output


def test_rollback_options_are_checked(db: str) -> None:
    result = CliRunner().invoke(main, ["rollback", "--count", "1", "--all", "--database", db])
    assert result.exit_code == 2
    assert "either --count or --all" in result.output
    result = CliRunner().invoke(main, ["rollback", "--count", "0", "--database", db])
    assert result.exit_code == 2


def test_database_from_group_option_and_environment(db: str) -> None:
    # on the group
    result = run("--database", db, "status")
    assert result.exit_code == 0, result.output
    assert f"0 applied, {len(ALL_IDS)} pending" in result.output
    # from the environment
    result = run("status", env={"IMS_DATABASE_URL": db})
    assert result.exit_code == 0, result.output
    assert f"0 applied, {len(ALL_IDS)} pending" in result.output
    # an explicit option beats the environment
    bad = url_for("ims_t_does_not_exist")
    result = run("status", "--database", db, env={"IMS_DATABASE_URL": bad})
    assert result.exit_code == 0, result.output
    result = run("--database", db, "status", env={"IMS_DATABASE_URL": bad})
    assert result.exit_code == 0, result.output


def test_database_errors_are_clear_and_exit_non_zero() -> None:
    result = CliRunner().invoke(main, ["status", "--database", url_for("ims_t_does_not_exist")])
    assert result.exit_code == 1
    assert "Error: database error:" in result.output
    assert "ims_t_does_not_exist" in result.output
    assert "Traceback" not in result.output


def test_grant_login(migrated: str) -> None:
    name = new_role_name()
    try:
        result = run("grant-login", name, "--database", migrated)
        assert result.exit_code == 0, result.output
        assert result.output.strip() == f"login {name} is a member of ims_app (runtime role)"
        # again, with a password, then with a prompted one
        result = run("grant-login", name, "--password", "pw", "--database", migrated)
        assert result.exit_code == 0, result.output
        result = run("grant-login", name, "--password", "--database", migrated, input="x\nx\n")
        assert result.exit_code == 0, result.output
        with psycopg.connect(migrated) as conn:
            row = conn.execute(
                "SELECT rolcanlogin, rolsuper, rolbypassrls, pg_has_role(%s, 'ims_app', 'MEMBER')"
                " FROM pg_roles WHERE rolname = %s",
                (name, name),
            ).fetchone()
        assert row == (True, False, False, True)
        # the new login works under RLS right away
        with psycopg.connect(url_for(conninfo_dbname(migrated), user=name)) as conn:
            assert conn.execute("SELECT count(*) FROM ims.crawl_sessions").fetchone() == (0,)
    finally:
        drop_role(name)


def test_grant_login_refuses_a_superuser(migrated: str) -> None:
    result = CliRunner().invoke(main, ["grant-login", "postgres", "--database", migrated])
    assert result.exit_code == 1
    assert "superuser" in result.output


def test_set_role(migrated: str) -> None:
    result = run("set-role", "yijae.shin", "admin", "--database", migrated)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "user yijae.shin now has role admin"
    with psycopg.connect(migrated) as conn:
        assert conn.execute(
            "SELECT role FROM ims.users WHERE username = 'yijae.shin'"
        ).fetchone() == ("admin",)
    result = run("set-role", "yijae.shin", "user", "--database", migrated)
    assert result.exit_code == 0, result.output
    with psycopg.connect(migrated) as conn:
        assert conn.execute(
            "SELECT role FROM ims.users WHERE username = 'yijae.shin'"
        ).fetchone() == ("user",)


def test_set_role_refuses_unknown_users_and_roles(migrated: str) -> None:
    result = CliRunner().invoke(main, ["set-role", "nobody", "admin", "--database", migrated])
    assert result.exit_code == 1
    assert "no user named 'nobody'" in result.output
    result = CliRunner().invoke(main, ["set-role", "yijae.shin", "root", "--database", migrated])
    assert result.exit_code == 2
    assert "'root' is not one of" in result.output


def test_version_and_python_m_ims_repo() -> None:
    version = importlib.metadata.version("ims-repo")
    result = run("--version")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"ims-repo, version {version}"
    # python -m ims_repo is the same command
    done = subprocess.run(
        [sys.executable, "-m", "ims_repo", "--version"], capture_output=True, text=True
    )
    assert (done.returncode, done.stdout.strip()) == (0, f"ims-repo, version {version}")
    done = subprocess.run(
        [sys.executable, "-m", "ims_repo", "--help"], capture_output=True, text=True
    )
    assert done.returncode == 0 and "Usage: ims-repo" in done.stdout, done.stderr


def _scram_matches(verifier: str, password: str) -> bool:
    """Whether a ``SCRAM-SHA-256$iterations:salt$StoredKey:ServerKey`` verifier is the one
    of *password* (RFC 5802/7677: what the server checks a login against)."""
    _, params, keys = verifier.split("$")
    iterations, salt = params.split(":")
    stored_key, server_key = (base64.b64decode(key) for key in keys.split(":"))
    salted = hashlib.pbkdf2_hmac(
        "sha256", password.encode(), base64.b64decode(salt), int(iterations)
    )
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    return (
        hashlib.sha256(client_key).digest() == stored_key
        and hmac.new(salted, b"Server Key", "sha256").digest() == server_key
    )


def test_grant_login_password_is_a_scram_verifier_computed_here(
    private_server: PrivateServer,
) -> None:
    admin_url, _ = private_server.new_database()
    name = f"ims_scram_{secrets.token_hex(4)}"
    secret = "correct horse battery 스테이플"
    # The server would hash a plaintext PASSWORD with md5 on this connection: a SCRAM
    # verifier stored anyway proves the client computed it and sent only that.
    md5_url = make_conninfo(admin_url, options="-c password_encryption=md5")
    hba = private_server.local.data / "pg_hba.conf"
    original = hba.read_text()
    try:
        result = run("grant-login", name, "--password", secret, "--database", md5_url)
        assert result.exit_code == 0, result.output
        with psycopg.connect(admin_url) as conn:
            row = conn.execute(
                "SELECT rolpassword FROM pg_catalog.pg_authid WHERE rolname = %s", (name,)
            ).fetchone()
        assert row is not None
        (stored,) = row
        assert stored.startswith("SCRAM-SHA-256$"), stored
        assert _scram_matches(stored, secret) and not _scram_matches(stored, secret + "x")
        # The login works with the password, on a server that checks it (this role only).
        hba.write_text(f"host all {name} 127.0.0.1/32 scram-sha-256\n{original}")
        private_server.admin("SELECT pg_reload_conf()")
        login = conninfo_to_dict(admin_url) | {"user": name}
        with psycopg.connect(**login, password=secret) as conn:
            assert conn.execute("SELECT current_user").fetchone() == (name,)
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(**login, password=secret + "x")
    finally:
        hba.write_text(original)
        private_server.admin("SELECT pg_reload_conf()")
        private_server.admin(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


def test_refresh_search_works_off_the_stale_backlog_in_batches(
    ims_admin_url: str, ims_app_url: str
) -> None:
    """Issues written since the last refresh have no rank bounds (migration 0011);
    ``refresh-search`` computes them batch by batch, as the runtime login, until none is
    left, and a second run finds nothing to do."""
    with psycopg.connect(ims_admin_url, autocommit=True) as admin:
        admin.execute(
            "INSERT INTO ims.issues (issue_id, title, product) "
            "SELECT 'RS-' || g, 'server timeout ' || g, 'OpenFrame' "
            "FROM generate_series(1, 25) AS g"
        )
        stale = "SELECT count(*) FROM ims.issue_search_stale"
        backlog = admin.execute(stale).fetchone()
        assert backlog is not None and backlog[0] >= 25
        result = run("refresh-search", "--batch-size", "7", "--database", ims_app_url)
        assert result.exit_code == 0, result.output
        assert result.output == f"refreshed the rank bounds of {backlog[0]} issues\n"
        assert admin.execute(stale).fetchone() == (0,)
        bounds = admin.execute(
            "SELECT count(*) FROM ims.issue_search_bounds AS b "
            "JOIN ims.issues AS i USING (issue_pk) WHERE i.issue_id LIKE 'RS-%'"
        ).fetchone()
        assert bounds == (25,)
    again = run("refresh-search", "--database", ims_app_url)
    assert again.output == "refreshed the rank bounds of 0 issues\n"
