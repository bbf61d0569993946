"""``s.comments``, ``s.history``, ``s.attachments``: the shared children of an issue,
every method through the public API, as the runtime login."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ims_repo import (
    Database,
    ForeignKeyViolation,
    InvalidInput,
    NewAttachment,
    NewIssueComment,
    NewIssueHistory,
    NotFound,
    Session,
)
from tests.seed import crawl, people

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
SHA = "ab" * 32


def new_issue(s: Session, issue_id: str, product: str = "OpenFrame") -> int:
    """An issue inserted by raw SQL (shared table: the runtime role may write it)."""
    [row] = s.execute(
        "INSERT INTO ims.issues (issue_id, title, product) VALUES (%(i)s, %(t)s, %(p)s) "
        "RETURNING issue_pk",
        {"i": issue_id, "t": f"Title of {issue_id}", "p": product},
    )
    return int(row["issue_pk"])


def issue(db: Database, issue_id: str = "SAMPLE-001") -> int:
    with db.session() as s:
        return new_issue(s, issue_id)


# --- comments ---------------------------------------------------------------------------


def test_comment_create_get_and_for_issue_in_display_order(ims_db: Database) -> None:
    pk, other = issue(ims_db, "A-1"), issue(ims_db, "A-2")
    with ims_db.session() as s:
        specs = [  # (comment_order, commented_at)
            (None, T0),
            (2, T0),
            (1, T0 + timedelta(hours=5)),
            (None, None),
            (2, T0 - timedelta(hours=1)),
            (None, T0 - timedelta(days=1)),
        ]
        made = [
            s.comments.create(
                pk, NewIssueComment(content=f"c{n}", comment_order=o, commented_at=t, author="kim")
            )
            for n, (o, t) in enumerate(specs)
        ]
        s.comments.create(other, {"content": "elsewhere"})
        first = made[0]
        assert (first.issue_pk, first.author, first.content, first.commented_at) == (
            pk,
            "kim",
            "c0",
            T0,
        )
        assert s.comments.get(first.comment_id) == first
        assert s.comments.get(first.comment_id + 1000) is None
        # comment_order (NULLS LAST), then commented_at (NULLS LAST), then comment_id
        assert [c.content for c in s.comments.for_issue(pk)] == [
            "c2",
            "c4",
            "c1",
            "c5",
            "c0",
            "c3",
        ]
        assert [c.content for c in s.comments.for_issue(other)] == ["elsewhere"]
        assert s.comments.for_issue(pk + 1000) == []


def test_comment_find_filters_order_and_pages(ims_db: Database) -> None:
    pk, other = issue(ims_db, "A-1"), issue(ims_db, "A-2")
    with ims_db.session() as s:
        ids = [
            s.comments.create(pk, {"content": "a", "author": "kim", "commented_at": T0}),
            s.comments.create(pk, {"content": "bb", "author": "lee", "comment_order": 3}),
            s.comments.create(other, {"content": "ab", "author": "kimura", "comment_order": 1}),
            s.comments.create(other, {"content": "c", "commented_at": T0 + timedelta(days=1)}),
        ]
        c = [x.comment_id for x in ids]

        def found(**kw: object) -> list[int]:
            return [x.comment_id for x in s.comments.find(**kw)]  # type: ignore[arg-type]

        assert found() == c
        assert found(issue_pk=other) == [c[2], c[3]]
        assert found(author="kim") == [c[0]]
        assert found(author_like="kim%") == [c[0], c[2]]
        assert found(has_author=False) == [c[3]]
        assert found(content_like="%b%") == [c[1], c[2]]
        assert found(has_commented_at=True) == [c[0], c[3]]
        assert found(commented_at_from=T0 + timedelta(hours=1)) == [c[3]]
        assert found(comment_order_in=[1, 3]) == [c[1], c[2]]
        assert found(order_by=["-comment_order"]) == [c[0], c[3], c[1], c[2]]  # NULLs first
        assert found(order_by=["issue_pk", "-comment_id"], limit=2, offset=1) == [c[0], c[3]]
        for bad in [{"nope": 1}, {"order_by": ["content"]}, {"issue_pk": "1"}, {"limit": -1}]:
            with pytest.raises(InvalidInput):
                s.comments.find(**bad)  # type: ignore[arg-type]
        assert s.statements_sent == 4 + 11


def test_comment_update_and_delete(ims_db: Database) -> None:
    pk = issue(ims_db)
    with ims_db.session() as s:
        made = s.comments.create(pk, {"content": "draft", "author": "kim", "comment_order": 1})
        changed = s.comments.update(made.comment_id, content="final", author=None)
        assert (changed.content, changed.author, changed.comment_order, changed.issue_pk) == (
            "final",
            None,
            1,
            pk,
        )
        assert s.comments.get(made.comment_id) == changed
        sent = s.statements_sent
        bads: list[dict[str, Any]] = [
            {"issue_pk": pk},
            {"content": None},
            {"content": "a\x00"},
            {},
        ]
        for bad in bads:
            with pytest.raises(InvalidInput):
                s.comments.update(made.comment_id, **bad)
        assert s.statements_sent == sent
        with pytest.raises(NotFound, match=f"comment_id={made.comment_id + 1000}"):
            s.comments.update(made.comment_id + 1000, content="x")
        assert s.comments.delete(made.comment_id) is True
        assert s.comments.delete(made.comment_id) is False
        assert s.comments.get(made.comment_id) is None


def test_comment_create_refuses_bad_input_before_sql_and_a_missing_issue(
    ims_db: Database,
) -> None:
    pk = issue(ims_db)
    bads: list[dict[str, Any]] = [
        {},
        {"content": "a\x00b"},
        {"content": "x", "extra": 1},
        {"content": 1},
    ]
    for bad in bads:
        with ims_db.session() as s:
            with pytest.raises(InvalidInput):
                s.comments.create(pk, bad)
            assert s.statements_sent == 0
    with pytest.raises(ForeignKeyViolation, match="issue"), ims_db.session() as s:
        s.comments.create(pk + 1000, {"content": "orphan"})
    with ims_db.session() as s:
        assert s.comments.find() == []


def test_add_many_writes_a_thousand_comments_in_one_statement_in_the_order_given(
    ims_db: Database,
) -> None:
    pk = issue(ims_db)
    comments: list[NewIssueComment | dict[str, object]] = [
        NewIssueComment(content=f"comment {n:04}", author=f"user{n % 7}") for n in range(500)
    ]
    comments += [
        {"content": f"comment {n:04}", "commented_at": T0 + timedelta(minutes=n)}
        for n in range(500, 1000)
    ]
    with ims_db.session() as s:
        assert s.comments.add_many(pk, iter(comments)) == 1000
        assert s.statements_sent == 1
    with ims_db.session() as s:
        stored = s.comments.for_issue(pk)
    assert [c.content for c in stored] == [
        *(f"comment {n:04}" for n in range(500, 1000)),  # with a time: by time
        *(f"comment {n:04}" for n in range(500)),  # without: in the order given
    ]
    assert [c.comment_id for c in stored[500:]] == sorted(c.comment_id for c in stored[500:])
    assert stored[0].commented_at == T0 + timedelta(minutes=500)
    assert stored[500].author == "user0" and stored[501].author == "user1"
    assert {c.issue_pk for c in stored} == {pk}


def test_add_many_is_all_or_nothing(ims_db: Database) -> None:
    pk = issue(ims_db)
    good = [{"content": f"c{n}"} for n in range(1000)]
    for index, bad in [(617, {"content": "nul\x00"}), (999, {"author": "no content"}), (0, 5)]:
        batch: list[object] = [*good]
        batch[index] = bad
        with ims_db.session() as s:
            with pytest.raises(InvalidInput, match=rf"comments\[{index}\]"):
                s.comments.add_many(pk, batch)  # type: ignore[arg-type]
            assert s.statements_sent == 0
    for not_a_list in ["content", {"content": "x"}, 3]:
        with ims_db.session() as s, pytest.raises(InvalidInput, match="iterable"):
            s.comments.add_many(pk, not_a_list)  # type: ignore[arg-type]
    # Refused by the database (integer out of range) on the last item: nothing written.
    with pytest.raises(InvalidInput, match="out of range"), ims_db.session() as s:
        s.comments.add_many(pk, [*good[:-1], {"content": "big", "comment_order": 2**40}])
    with pytest.raises(ForeignKeyViolation), ims_db.session() as s:
        s.comments.add_many(pk + 1000, good)
    with ims_db.session() as s:
        assert s.comments.add_many(pk, []) == 0
        assert s.statements_sent == 0
        assert s.comments.find() == []


# --- history ----------------------------------------------------------------------------


def test_history_create_defaults_changed_at_and_for_issue_is_in_time_order(
    ims_db: Database,
) -> None:
    pk, other = issue(ims_db, "A-1"), issue(ims_db, "A-2")
    with ims_db.session() as s:
        [now] = s.execute("SELECT now() AS t")
        late = s.history.create(
            pk,
            NewIssueHistory(
                field_name="status",
                old_value="Open",
                new_value="Closed",
                changed_by="kim",
                changed_at=T0 + timedelta(days=1),
            ),
        )
        undated = s.history.create(pk, {"field_name": "priority", "new_value": "High"})
        early = s.history.create(pk, {"field_name": "status", "changed_at": T0})
        tie = s.history.create(pk, {"field_name": "assignee", "changed_at": T0})
        s.history.create(other, {"field_name": "status"})
        assert undated.changed_at == now["t"]  # the transaction's time
        assert (late.old_value, late.new_value, late.changed_by) == ("Open", "Closed", "kim")
        assert s.history.get(late.history_id) == late
        assert s.history.get(late.history_id + 1000) is None
        assert s.history.for_issue(pk) == [early, tie, late, undated]
        assert len(s.history.for_issue(other)) == 1
        for bad in [{}, {"field_name": ""}, {"field_name": "x", "old_value": "\x00"}]:
            sent = s.statements_sent
            with pytest.raises(InvalidInput):
                s.history.create(pk, bad)
            assert s.statements_sent == sent
        assert s.history.delete(tie.history_id) is True
        assert s.history.delete(tie.history_id) is False
        assert s.history.for_issue(pk) == [early, late, undated]


def test_history_find(ims_db: Database) -> None:
    pk, other = issue(ims_db, "A-1"), issue(ims_db, "A-2")
    with ims_db.session() as s:
        h = [
            s.history.create(pk, {"field_name": "status", "changed_at": T0, "new_value": "Open"}),
            s.history.create(pk, {"field_name": "priority", "changed_at": T0 + timedelta(hours=2)}),
            s.history.create(
                other,
                {"field_name": "status", "changed_at": T0 + timedelta(hours=1), "new_value": "X"},
            ),
        ]
        ids = [x.history_id for x in h]

        def found(**kw: object) -> list[int]:
            return [x.history_id for x in s.history.find(**kw)]  # type: ignore[arg-type]

        assert found(field_name="status") == [ids[0], ids[2]]
        assert found(issue_pk=pk, order_by=["-changed_at"]) == [ids[1], ids[0]]
        assert found(
            changed_at_from=T0 + timedelta(hours=1), changed_at_to=T0 + timedelta(hours=2)
        ) == [ids[2]]
        assert found(has_new_value=False) == [ids[1]]
        assert found(field_name_in=["priority", "module"]) == [ids[1]]
        assert found(order_by="changed_at", limit=1, offset=1) == [ids[2]]
        with pytest.raises(InvalidInput):
            s.history.find(changed=T0)


def test_history_add_many_in_one_statement_with_now_as_default(ims_db: Database) -> None:
    pk = issue(ims_db)
    changes: list[NewIssueHistory | dict[str, object]] = [
        {"field_name": "status", "old_value": "Open", "new_value": "Closed", "changed_at": T0},
        NewIssueHistory(field_name="assignee", new_value="lee"),
        {"field_name": "priority", "changed_at": T0 - timedelta(days=1), "changed_by": "kim"},
    ]
    with ims_db.session() as s:
        assert s.history.add_many(pk, changes) == 3
        assert s.statements_sent == 1
        [now] = s.execute("SELECT now() AS t")
        stored = s.history.for_issue(pk)
    assert [(h.field_name, h.changed_at) for h in stored] == [
        ("priority", T0 - timedelta(days=1)),
        ("status", T0),
        ("assignee", now["t"]),
    ]
    assert stored[1].old_value == "Open" and stored[0].changed_by == "kim"
    with ims_db.session() as s:
        with pytest.raises(InvalidInput, match=r"changes\[1\]"):
            s.history.add_many(pk, [{"field_name": "ok"}, {"new_value": "no field"}])
        assert s.statements_sent == 0
        assert s.history.add_many(pk, []) == 0
        assert len(s.history.for_issue(pk)) == 3


# --- attachments ------------------------------------------------------------------------


def test_attachment_create_get_for_issue_update_delete(ims_db: Database) -> None:
    pk, other = issue(ims_db, "A-1"), issue(ims_db, "A-2")
    with ims_db.session() as s:
        [now] = s.execute("SELECT now() AS t")
        first = s.attachments.create(
            NewAttachment(
                issue_pk=pk,
                filename="trace.log",
                file_type="text/plain",
                file_size=1234,
                storage_path="/data/a/trace.log",
                checksum_sha256=SHA,
                downloaded_at=T0,
            )
        )
        second = s.attachments.create({"issue_pk": pk, "filename": "dump.bin"})
        s.attachments.create({"issue_pk": other, "filename": "x.png"})
        assert (first.filename, first.file_size, first.checksum_sha256, first.downloaded_at) == (
            "trace.log",
            1234,
            SHA,
            T0,
        )
        assert second.downloaded_at == now["t"] and second.session_id is None
        assert s.attachments.get(first.attachment_id) == first
        assert s.attachments.get(first.attachment_id + 1000) is None
        assert s.attachments.for_issue(pk) == [first, second]

        changed = s.attachments.update(
            second.attachment_id, checksum_sha256=SHA, file_size=0, session_id=77
        )
        assert (changed.checksum_sha256, changed.file_size, changed.session_id) == (SHA, 0, 77)
        assert changed.filename == "dump.bin" and changed.issue_pk == pk
        cleared = s.attachments.update(second.attachment_id, session_id=None, file_type=None)
        assert cleared.session_id is None and cleared.checksum_sha256 == SHA
        sent = s.statements_sent
        bads: list[dict[str, Any]] = [
            {"issue_pk": other},
            {"checksum_sha256": "ABC"},
            {"file_size": -1},
            {"filename": ""},
            {"downloaded_at": None},
        ]
        for bad in bads:
            with pytest.raises(InvalidInput):
                s.attachments.update(second.attachment_id, **bad)
        assert s.statements_sent == sent
        with pytest.raises(NotFound, match="attachment_id"):
            s.attachments.update(second.attachment_id + 1000, filename="y")
        assert s.attachments.delete(first.attachment_id) is True
        assert s.attachments.delete(first.attachment_id) is False
        assert s.attachments.for_issue(pk) == [cleared]


def test_attachment_bad_input_is_refused_before_sql(ims_db: Database) -> None:
    pk = issue(ims_db)
    bads: list[dict[str, Any]] = [
        {"filename": "no issue"},
        {"issue_pk": pk, "filename": ""},
        {"issue_pk": pk, "filename": "a", "checksum_sha256": "f" * 63},
        {"issue_pk": pk, "filename": "a", "checksum_sha256": "F" * 64},
        {"issue_pk": pk, "filename": "a", "file_size": -5},
        {"issue_pk": pk, "filename": "a\x00"},
    ]
    for bad in bads:
        with ims_db.session() as s:
            with pytest.raises(InvalidInput):
                s.attachments.create(bad)
            assert s.statements_sent == 0
    with pytest.raises(ForeignKeyViolation), ims_db.session() as s:
        s.attachments.create({"issue_pk": pk + 1000, "filename": "orphan"})


def test_attachment_find(ims_db: Database) -> None:
    pk, other = issue(ims_db, "A-1"), issue(ims_db, "A-2")
    with ims_db.session() as s:
        a = [
            s.attachments.create(
                {"issue_pk": pk, "filename": "a.log", "file_type": "log", "file_size": 10}
            ),
            s.attachments.create(
                {
                    "issue_pk": pk,
                    "filename": "b.png",
                    "file_type": "png",
                    "session_id": 5,
                    "checksum_sha256": SHA,
                    "file_size": 30,
                }
            ),
            s.attachments.create(
                {
                    "issue_pk": other,
                    "filename": "c.log",
                    "session_id": 6,
                    "file_size": 20,
                    "downloaded_at": T0,
                }
            ),
        ]
        ids = [x.attachment_id for x in a]

        def found(**kw: object) -> list[int]:
            return [x.attachment_id for x in s.attachments.find(**kw)]  # type: ignore[arg-type]

        assert found(issue_pk=pk) == ids[:2]
        assert found(session_id=5) == [ids[1]]
        assert found(has_session_id=False) == [ids[0]]
        assert found(file_type="log") == [ids[0]]
        assert found(filename_like="%.log") == [ids[0], ids[2]]
        assert found(has_checksum_sha256=True) == [ids[1]]
        assert found(downloaded_at_to=T0 + timedelta(seconds=1)) == [ids[2]]
        assert found(order_by=["-file_size"]) == [ids[1], ids[2], ids[0]]
        assert found(order_by=["-file_size"], limit=1, offset=2) == [ids[0]]
        with pytest.raises(InvalidInput):
            s.attachments.find(session_id_like="5")


def test_attachments_do_not_depend_on_or_reveal_other_users_sessions(
    ims_db: Database, ims_admin_url: str
) -> None:
    p = people(ims_db, ims_admin_url)
    [alices] = crawl(ims_db, p.alice, 1)
    [bobs] = crawl(ims_db, p.bob, 1)
    pk = issue(ims_db)
    missing = alices + bobs + 1000
    made = {}
    for label, session_id in [("own", bobs), ("alice's", alices), ("none", missing)]:
        with ims_db.session(user_id=p.bob) as s:
            made[label] = s.attachments.create(
                {"issue_pk": pk, "filename": f"{label}.log", "session_id": session_id}
            )
            assert s.statements_sent == 1  # no lookup of the session, no other error path
    assert made["alice's"].session_id == alices and made["none"].session_id == missing
    with ims_db.session(user_id=p.bob) as s:
        assert s.crawl_sessions.get(alices) is None  # still hidden from bob
        # Alice's session id on a shared row says nothing more about it than bob gave.
        assert [x.filename for x in s.attachments.find(session_id_in=[alices, missing])] == [
            "alice's.log",
            "none.log",
        ]
    with ims_db.session() as s:  # no context: shared rows are still written the same way
        assert s.attachments.create({"issue_pk": pk, "filename": "n", "session_id": alices})
    # The shared row does not depend on the session: deleting it leaves the attachment.
    with ims_db.session(user_id=p.alice) as s:
        assert s.crawl_sessions.delete(alices) is True
    with ims_db.session(user_id=p.bob) as s:
        assert s.attachments.get(made["alice's"].attachment_id) == made["alice's"]


def test_children_cascade_with_their_shared_issue(ims_db: Database, ims_admin_url: str) -> None:
    p = people(ims_db, ims_admin_url)
    pk, keep = issue(ims_db, "GONE-1"), issue(ims_db, "KEEP-1")
    with ims_db.session(user_id=p.alice) as s:
        for target in (pk, keep):
            s.comments.add_many(target, [{"content": "a"}, {"content": "b"}])
            s.history.add_many(target, [{"field_name": "status"}])
            s.attachments.create({"issue_pk": target, "filename": "f"})
    with ims_db.session(user_id=p.bob) as s:  # shared rows: anyone may delete the issue
        deleted = s.execute(
            "DELETE FROM ims.issues WHERE issue_pk = %(pk)s RETURNING 1", {"pk": pk}
        )
        assert len(deleted) == 1
    with ims_db.session(user_id=p.alice) as s:
        assert s.comments.find(issue_pk=pk) == []
        assert s.history.find(issue_pk=pk) == []
        assert s.attachments.find(issue_pk=pk) == []
        assert (len(s.comments.for_issue(keep)), len(s.history.for_issue(keep))) == (2, 1)
        assert len(s.attachments.for_issue(keep)) == 1


# --- one shape for child records: issue_pk on the record (SPEC §4) -----------------------


def test_comment_and_history_records_carry_issue_pk(ims_db: Database) -> None:
    pk = issue(ims_db)
    with ims_db.session() as s:
        comment = s.comments.create(NewIssueComment(issue_pk=pk, content="on the record"))
        change = s.history.create(NewIssueHistory(issue_pk=pk, field_name="status"))
        mapped = s.comments.create({"issue_pk": pk, "content": "a mapping names it too"})
        assert (comment.issue_pk, change.issue_pk, mapped.issue_pk) == (pk, pk, pk)
        # the two-argument form still works, with or without the same issue_pk
        both = s.comments.create(pk, NewIssueComment(issue_pk=pk, content="same issue"))
        bare = s.history.create(pk, {"field_name": "priority"})
        assert (both.issue_pk, bare.issue_pk) == (pk, pk)
        assert [c.content for c in s.comments.for_issue(pk)] == [
            "on the record",
            "a mapping names it too",
            "same issue",
        ]
        assert [h.field_name for h in s.history.for_issue(pk)] == ["status", "priority"]
        # the same shape as NewAttachment
        assert "issue_pk" in NewIssueComment.model_fields
        assert "issue_pk" in NewIssueHistory.model_fields
        assert "issue_pk" in NewAttachment.model_fields


def test_a_child_without_its_issue_or_naming_another_is_refused_before_any_sql(
    ims_db: Database,
) -> None:
    pk = issue(ims_db)
    with ims_db.session() as s:
        with pytest.raises(InvalidInput, match="NewIssueComment: issue_pk: Field required"):
            s.comments.create(NewIssueComment(content="which issue?"))
        with pytest.raises(InvalidInput, match="NewIssueHistory: issue_pk: Field required"):
            s.history.create({"field_name": "status"})
        with pytest.raises(InvalidInput, match=rf"issue_pk: {pk + 1} is not issue {pk}"):
            s.comments.create(pk, NewIssueComment(issue_pk=pk + 1, content="elsewhere"))
        with pytest.raises(InvalidInput, match=rf"issue_pk: {pk + 1} is not issue {pk}"):
            s.history.create(pk, {"issue_pk": pk + 1, "field_name": "status"})
        with pytest.raises(InvalidInput, match="names an issue but no record"):
            s.comments.create(pk)  # type: ignore[call-overload]
        assert s.statements_sent == 0


def test_add_many_items_may_omit_issue_pk_but_not_name_another(ims_db: Database) -> None:
    pk, other = issue(ims_db, "A-1"), issue(ims_db, "A-2")
    comments: list[NewIssueComment | dict[str, object]] = [
        NewIssueComment(content="no issue_pk"),
        NewIssueComment(issue_pk=pk, content="the same issue_pk"),
        {"content": "a mapping without it"},
        {"issue_pk": pk, "content": "a mapping with it"},
    ]
    changes: list[NewIssueHistory | dict[str, object]] = [
        NewIssueHistory(field_name="status"),
        {"issue_pk": pk, "field_name": "priority"},
    ]
    with ims_db.session() as s:
        assert s.comments.add_many(pk, comments) == 4
        assert s.history.add_many(pk, changes) == 2
        assert len(s.comments.for_issue(pk)) == 4 and len(s.history.for_issue(pk)) == 2
    with ims_db.session() as s:
        with pytest.raises(InvalidInput, match=rf"comments\[2\]: issue_pk: {other} is not"):
            s.comments.add_many(pk, [*comments[:2], NewIssueComment(issue_pk=other, content="x")])
        with pytest.raises(InvalidInput, match=rf"changes\[1\]: issue_pk: {other} is not"):
            s.history.add_many(pk, [changes[0], {"issue_pk": other, "field_name": "x"}])
        assert s.statements_sent == 0
    with ims_db.session() as s:
        assert s.comments.for_issue(other) == [] and s.history.for_issue(other) == []
        assert len(s.comments.for_issue(pk)) == 4  # nothing more was written
