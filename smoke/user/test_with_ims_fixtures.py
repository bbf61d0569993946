"""A user's tests: the installed plugin's fixtures, from outside the repository."""

from ims_repo import Database, NewUser


def test_session_writes_and_reads(ims_session) -> None:
    with ims_session(user_id=None) as s:
        user = s.users.create(NewUser(username="smoke.user", email="smoke@example.com"))
    with ims_session(user_id=user.user_id) as s:
        assert s.users.get(user.user_id) == user


def test_database_is_a_fresh_copy(ims_db: Database) -> None:
    with ims_db.session(user_id=None) as s:
        assert s.users.get_by_username("smoke.user") is None
