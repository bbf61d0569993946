"""``ims-repo demo`` on an empty database: migrates, loads, shows RLS from both sides."""

from __future__ import annotations

from click.testing import CliRunner

from ims_repo.cli import main


def test_demo_runs_twice_on_an_empty_database(ims_empty_url: str) -> None:
    runner = CliRunner()
    first = runner.invoke(main, ["demo", "--database", ims_empty_url])
    assert first.exit_code == 0, first.output
    assert "created user yijae.shin (id 2)" in first.output
    assert "as john.doe (user 3): sees 0 of yijae.shin's sessions" in first.output
    assert "with no user context: 0 sessions visible" in first.output
    again = runner.invoke(main, ["demo", "--database", ims_empty_url])
    assert again.exit_code == 0, again.output
    assert "migrate: up to date" in again.output
    assert "as yijae.shin (user 2): 1 crawl session(s)" in again.output
