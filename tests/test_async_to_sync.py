"""The generator of the sync twin (scripts/async_to_sync.py): what it rewrites, and that
the committed twin is what it makes (``make test`` runs ``--check`` too)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("async_to_sync", ROOT / "scripts" / "async_to_sync.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


SOURCE = '''\
from contextlib import asynccontextmanager
from ims_repo.db._async.session import AsyncSession


class AsyncThing:
    """Says "await" in a docstring, which stays."""

    async def get(self, s: AsyncSession) -> int:
        async with s.savepoint():
            rows = await s.fetch_rows(x)  # await in a comment stays
        async for row in rows:
            pass
        if True:  # ASYNC
            await asleep(1)
        else:
            sleep(1)
        return len(rows)
'''

EXPECTED = '''\
from contextlib import contextmanager
from ims_repo.db._sync.session import Session


class Thing:
    """Says "await" in a docstring, which stays."""

    def get(self, s: Session) -> int:
        with s.savepoint():
            rows = s.fetch_rows(x)  # await in a comment stays
        for row in rows:
            pass
        sleep(1)
        return len(rows)
'''


def test_the_generator_drops_async_and_await_and_renames_the_async_names() -> None:
    assert generator().unasync(SOURCE) == EXPECTED


def test_the_committed_sync_twin_is_what_the_generator_makes() -> None:
    module = generator()
    for path, text in module.generated().items():
        assert path.read_text(encoding="utf-8") == text, f"{path} is out of date"
