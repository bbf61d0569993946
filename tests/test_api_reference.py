"""The API reference (``make docs``): it builds, every public name has a docstring, and
each repository's ``find`` docstring lists exactly the filters its whitelist accepts.

Public means what a user reaches: every name in ``ims_repo.__all__``; for a class, its
public methods and properties (inherited ones from ims_repo classes included); every
repository a session hands out (``s.users``…, found from the return types of
``Session``/``AsyncSession``'s attributes); and every ims_repo class a public method
returns (records such as ``IssueDetail``). Pydantic's and Python's own members are not
ours to document.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import re
import sys
import types
import typing
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import Any

import pdoc.doc
import pytest

import ims_repo
from ims_repo.core.filters import FilterSet

ROOT = Path(__file__).resolve().parent.parent


def script(name: str) -> types.ModuleType:
    """A module of ``scripts/`` (not a package), imported by path."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


api_reference = script("api_reference")
filter_docs = script("filter_docs")


# --- the build ------------------------------------------------------------------------


def test_the_reference_builds_with_every_repository_and_its_filters(tmp_path: Path) -> None:
    api_reference.build(tmp_path)
    assert (tmp_path / "index.html").exists()
    top = (tmp_path / "ims_repo.html").read_text(encoding="utf-8")
    for name in ("Database", "AsyncSession", "NewIssue", "NotFound", "get_session"):
        assert f'id="{name}"' in top, name
    for twin in ("_sync", "_async"):
        issues = tmp_path / "ims_repo" / "db" / twin / "repositories" / "issues.html"
        assert "<code>issue_updated_at_from</code>" in issues.read_text(encoding="utf-8")


def test_a_module_that_does_not_import_breaks_the_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api_reference, "MODULES", ("ims_repo", "ims_repo.no_such_module"))
    with pytest.raises(Warning, match=r"ims_repo\.no_such_module"):
        api_reference.build(tmp_path)


# --- docstrings of every public name --------------------------------------------------


def own_doc(member: Any) -> str:
    """The member's own docstring (a class's is never inherited), stripped."""
    if isinstance(member, staticmethod | classmethod):
        member = member.__func__
    if isinstance(member, type):
        return (vars(member).get("__doc__") or "").strip()
    return (getattr(member, "__doc__", None) or "").strip()


def ims_classes(annotation: Any) -> Iterator[type]:
    """The ims_repo classes in a type annotation (``list[Issue] | None`` → ``Issue``)."""
    if isinstance(annotation, type) and annotation.__module__.startswith("ims_repo."):
        yield annotation
    for argument in typing.get_args(annotation):
        yield from ims_classes(argument)


def returned_classes(member: Any) -> Iterator[type]:
    function = member.func if isinstance(member, cached_property) else member
    function = function.fget if isinstance(function, property) else function
    if isinstance(function, staticmethod | classmethod):
        function = function.__func__
    yield from ims_classes(typing.get_type_hints(function).get("return"))


def undocumented(names: dict[str, Any]) -> list[str]:
    """Every public name reachable from ``names`` that has no docstring."""
    missing: list[str] = []
    seen: set[type] = set()

    def visit_class(cls: type, label: str) -> None:
        if cls in seen:
            return
        seen.add(cls)
        if not own_doc(cls):
            missing.append(label)
        for base in cls.__mro__:
            if not base.__module__.startswith("ims_repo"):
                continue
            for name, member in vars(base).items():
                if name.startswith("_") or not is_documentable(member):
                    continue
                if not own_doc(member):
                    missing.append(f"{label}.{name}")
                for returned in returned_classes(member):
                    visit_class(returned, returned.__qualname__)

    for name, value in names.items():
        if isinstance(value, type):
            visit_class(value, name)
        elif callable(value):
            if not own_doc(value):
                missing.append(name)
            for returned in returned_classes(value):
                visit_class(returned, returned.__qualname__)
        elif not variable_doc(name, value):
            missing.append(name)
    return sorted(set(missing))


def is_documentable(member: Any) -> bool:
    kinds = property | cached_property | staticmethod | classmethod
    return inspect.isfunction(member) or isinstance(member, kinds)


def variable_doc(name: str, value: Any) -> str:
    """The docstring under a module-level assignment (``After = …`` then a string), read
    by pdoc from the source of whichever ims_repo module binds ``value`` to ``name``."""
    for module in list(sys.modules.values()):
        if module and module.__name__.startswith("ims_repo") and vars(module).get(name) is value:
            member = pdoc.doc.Module(module).get(name)
            if member is not None and member.docstring.strip():
                return member.docstring
    return ""


def test_every_public_name_has_a_docstring() -> None:
    public = {name: getattr(ims_repo, name) for name in ims_repo.__all__}
    missing = undocumented(public)
    assert missing == [], "no docstring:\n" + "\n".join(missing)


def test_the_walk_reaches_the_repositories_and_the_records_they_return() -> None:
    """Not a vacuous pass: what the walk visits includes what a user calls most."""
    from ims_repo.db._async.repositories.issues import AsyncIssueRepository
    from ims_repo.db._sync.repositories.issues import IssueRepository

    reached = {
        returned
        for session in (ims_repo.Session, ims_repo.AsyncSession)
        for member in vars(session).values()
        if isinstance(member, cached_property)
        for returned in returned_classes(member)
    }
    assert {IssueRepository, AsyncIssueRepository} <= reached
    assert len(reached) >= 24  # twelve repositories, twice
    detail = {cls.__name__ for cls in returned_classes(IssueRepository.detail)}
    assert detail == {"IssueDetail"}


def test_the_walk_reports_a_missing_docstring_by_name() -> None:
    class Documented:
        """Has one."""

        def method(self) -> None:
            pass

        @property
        def value(self) -> int:
            return 1

    Documented.__module__ = "ims_repo.example"
    assert undocumented({"Documented": Documented}) == [
        "Documented.method",
        "Documented.value",
    ]


# --- find's filters, from the whitelist ---------------------------------------------

REPOSITORY_MODULES = [
    f"ims_repo.db.{twin}.repositories.{name}"
    for twin in ("_async", "_sync")
    for name in filter_docs.documented_modules()
]
_CODE = re.compile(r"``([^`]+)``")


def find_of(module: types.ModuleType) -> Any:
    [find] = [
        vars(value)["find"]
        for value in vars(module).values()
        if inspect.isclass(value) and value.__module__ == module.__name__ and "find" in vars(value)
    ]
    return find


def listed_filters(doc: str) -> tuple[set[str], list[str]]:
    """The filter names and order keys a ``find`` docstring gives, read back from it."""
    section = doc[doc.index(filter_docs.MARKER) :]
    items = re.findall(r"^- (.*(?:\n  .*)*)", section, flags=re.MULTILINE)
    names: set[str] = set()
    for item in items:
        column, *also = _CODE.findall(item.split(":", 1)[0] + item.partition("also")[2])
        names |= {column, f"{column}_not", f"{column}_in", *also}
    order = section[section.index("Order keys") :]
    keys = _CODE.findall(order.partition("):")[2])
    return names, keys


def test_every_filtering_repository_is_covered() -> None:
    assert len(REPOSITORY_MODULES) == 18  # nine repositories with find(**filters), twice


@pytest.mark.parametrize("name", REPOSITORY_MODULES)
def test_find_lists_exactly_the_filters_and_order_keys_of_the_whitelist(name: str) -> None:
    module = importlib.import_module(name)
    filters: FilterSet = module.FILTERS
    doc = inspect.cleandoc(find_of(module).__doc__)
    assert filter_docs.MARKER in doc, f"{name}: run python scripts/filter_docs.py"
    names, keys = listed_filters(doc)
    assert names == set(filters.filter_names)
    assert keys == filters.order_keys
    # and in the generated wording, so `scripts/filter_docs.py --check` passes too
    assert filter_docs.filter_section(filters) in doc, (
        f"{name}: find's docstring is stale: run python scripts/filter_docs.py, "
        "then python scripts/async_to_sync.py"
    )


def test_a_stale_filter_list_is_caught() -> None:
    """A column added to the whitelist but not to the docstring fails the comparison."""
    from ims_repo.core.filters import Column
    from ims_repo.db._async.repositories import history

    doc = inspect.cleandoc(find_of(history).__doc__)
    grown = FilterSet({**history.FILTERS.columns, "extra": Column(str)}, key="history_id")
    names, _ = listed_filters(doc)
    assert set(grown.filter_names) - names == {"extra", "extra_not", "extra_in", "extra_like"}
    assert filter_docs.filter_section(grown) not in doc
