"""OpenTelemetry traces of ims_repo's statements, set up as docs/OBSERVABILITY.md says:
``opentelemetry-instrumentation-psycopg`` instrumented before the ``Database`` opens its
pool, spans caught by the SDK's in-memory exporter.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator

import pytest
from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ims_repo import AsyncDatabase, Database, NewUser

#: How the named statement is read back from a span (docs/OBSERVABILITY.md).
NAMED = re.compile(r"^/\* ims_repo (\S+) \*/")
SECRET = "traced.user.4711"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """psycopg instrumented for this test only, its spans kept in memory."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = PsycopgInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        yield exporter
    finally:
        instrumentor.uninstrument()
        provider.shutdown()


@pytest.fixture
def ims_db(spans: InMemorySpanExporter, ims_db: Database) -> Database:
    """The plugin's ``ims_db``, opened after psycopg was instrumented (``spans`` first)."""
    return ims_db


def _named(finished: tuple[ReadableSpan, ...]) -> list[tuple[str, str]]:
    """(span name, named statement) of each span that ran a named statement."""
    found = []
    for span in finished:
        match = NAMED.match(str((span.attributes or {}).get("db.statement", "")))
        if match:
            found.append((span.name, match[1]))
    return found


def test_spans_carry_the_named_statement(ims_db: Database, spans: InMemorySpanExporter) -> None:
    with ims_db.session(user_id=None) as s:
        user = s.users.create(NewUser(username=SECRET, email="traced@example.com"))
        assert s.users.get_by_username(SECRET) == user
        s.users.find(limit=5)
    finished = spans.get_finished_spans()
    # A span per statement sent, named by its command: the transaction's BEGIN and the
    # RLS context, each repository call's statement, COMMIT (and the pool's login check,
    # whose SQL is not a named statement).
    assert {"BEGIN", "COMMIT"} <= {span.name for span in finished}
    assert _named(finished) == [
        ("SELECT", "context.set_current_user"),
        ("INSERT", "users.create"),
        ("SELECT", "users.get_by_username"),
        ("SELECT", "users.find"),
    ]
    attributes = dict(finished[-1].attributes or {})
    assert attributes["db.system"] == "postgresql"
    assert attributes["db.name"]  # the test's database
    # Parameters are not captured (the instrumentation's default): no user data in a span.
    assert not any(SECRET in str(value) for span in finished for value in (span.attributes or {}).values())


def test_pool_connections_opened_before_instrumenting_are_not_traced(ims_app_url: str) -> None:
    """The instrumentation wraps ``Connection.connect``: a pooled connection opened before
    ``instrument()`` keeps its plain cursors (instrument first, then open the Database)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with Database(ims_app_url, min_size=1, max_size=1) as early:
        with early.session() as s:  # the pool's one connection, opened uninstrumented
            s.users.find(limit=1)
        PsycopgInstrumentor().instrument(tracer_provider=provider)
        try:
            with early.session() as s:
                s.users.find(limit=1)
            assert _named(exporter.get_finished_spans()) == []
            with Database(ims_app_url, min_size=1, max_size=1) as late, late.session() as s:
                s.users.find(limit=1)
        finally:
            PsycopgInstrumentor().uninstrument()
    assert [name for _, name in _named(exporter.get_finished_spans())] == [
        "context.set_current_user",
        "users.find",
    ]


def test_async_spans_carry_the_named_statement(
    ims_app_url: str, spans: InMemorySpanExporter
) -> None:
    async def run() -> None:
        async with AsyncDatabase(ims_app_url, max_size=2) as db, db.session() as s:
            await s.users.get_by_username("nobody")

    asyncio.run(run())
    # A lone read sends the context and the statement in one pipeline (no BEGIN).
    assert _named(spans.get_finished_spans()) == [
        ("SELECT", "context.set_current_user"),
        ("SELECT", "users.get_by_username"),
    ]
