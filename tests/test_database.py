"""``Database`` construction: from the environment, the module-level ``get_session``,
bad URLs and ``act_as`` names."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ims_repo import Database, InvalidInput, NewUser, get_session
from ims_repo.db import default as database_module


@pytest.fixture
def default_database(monkeypatch: pytest.MonkeyPatch, ims_app_url: str) -> Iterator[None]:
    monkeypatch.setenv("IMS_DATABASE_URL", ims_app_url)
    monkeypatch.setattr(database_module, "_default", None)
    yield
    if database_module._default is not None:
        database_module._default.close()


@pytest.mark.usefixtures("default_database")
def test_get_session_uses_a_database_from_the_environment() -> None:
    with get_session() as s:
        s.users.create(NewUser(username="env.user", email="env@example.com"))
    first = database_module._default
    with get_session(user_id=1) as s:
        assert s.user_id == 1
        assert s.users.get_by_username("env.user") is not None
    assert database_module._default is first  # one pool for the process


@pytest.mark.usefixtures("default_database")
def test_from_env_reads_the_same_variable() -> None:
    with Database.from_env(max_size=2) as db, db.session() as s:
        assert s.execute("SELECT current_user AS role") == [{"role": "ims_test_app"}]


def test_bad_urls_and_role_names_are_refused_before_connecting(ims_admin_url: str) -> None:
    with pytest.raises(InvalidInput, match="not a valid database URL"):
        Database("host=localhost port")
    with pytest.raises(InvalidInput, match="plain role name"):
        Database(ims_admin_url, act_as="ims_app -c role=postgres")


def test_a_non_int_user_id_is_refused(ims_db: Database) -> None:
    for bad in ("2", True, 2.0):
        with pytest.raises(InvalidInput, match="user_id"), ims_db.session(user_id=bad):  # type: ignore[arg-type]
            pass
