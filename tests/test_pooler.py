"""The pooler decision of ``ims_repo.core.pooler``, without a server: detection, the plan
for a direct or pooled connection, and the URL options a pooler can carry."""

from __future__ import annotations

import pytest

from ims_repo.core.pooler import (
    behind_pooler,
    check_pooler,
    parse_options,
    plan_connections,
)
from ims_repo.errors import InvalidInput

SETTINGS = (("role", "ims_app"), ("statement_timeout", "30000"))


def test_detection_compares_the_announced_process_id_with_the_servers() -> None:
    assert behind_pooler("auto", 4242, 4242) is False
    assert behind_pooler("auto", -503631411, 9946) is True  # what pgbouncer 1.18 announced
    assert behind_pooler("pgbouncer", 4242, 4242) is True  # named: whatever it looks like
    assert behind_pooler("none", -1, 9946) is False


def test_only_the_three_pooler_names_are_accepted() -> None:
    assert [check_pooler(name) for name in ("auto", "pgbouncer", "none")] == [
        "auto",
        "pgbouncer",
        "none",
    ]
    with pytest.raises(InvalidInput, match="auto, pgbouncer, none"):
        check_pooler("pgpool")


def test_a_direct_connection_sends_the_settings_at_login_and_prepares() -> None:
    plan = plan_connections("-c search_path=ims", SETTINGS, pooled=False, prepare_threshold="auto")
    assert plan.startup_options == "-c search_path=ims -c role=ims_app -c statement_timeout=30000"
    assert plan.prepare_threshold == 5
    assert plan.settings is None
    assert plan_connections("", (), pooled=False, prepare_threshold=None).prepare_threshold is None


def test_behind_a_pooler_everything_goes_in_one_transaction_local_statement() -> None:
    plan = plan_connections("-c search_path=ims", SETTINGS, pooled=True, prepare_threshold="auto")
    assert plan.startup_options == ""
    assert plan.prepare_threshold is None
    assert plan.settings is not None
    assert "set_config" in plan.settings.text and ", TRUE)" in plan.settings.text
    assert plan.settings.params == {
        "names": ["search_path", "role", "statement_timeout"],
        "values": ["ims", "ims_app", "30000"],
    }
    explicit = plan_connections("", (), pooled=True, prepare_threshold=3)
    assert explicit.prepare_threshold == 3  # the caller's own threshold is kept
    assert explicit.settings is None  # nothing to set: nothing sent


def test_the_options_forms_the_server_accepts_are_read_as_it_reads_them() -> None:
    assert parse_options("") == ()
    assert parse_options("-c a=1   -cb=2 --c-d=3") == (("a", "1"), ("b", "2"), ("c_d", "3"))
    assert parse_options(r"-c application_name=my\ crawler -c x=a\\b") == (
        ("application_name", "my crawler"),
        ("x", "a\\b"),
    )
    assert parse_options("-c search_path=ims,public") == (("search_path", "ims,public"),)


@pytest.mark.parametrize("options", ["-B 100", "-c", "-c novalue", "--=1", "plain"])
def test_options_that_are_not_settings_are_refused(options: str) -> None:
    with pytest.raises(InvalidInput):
        parse_options(options)
