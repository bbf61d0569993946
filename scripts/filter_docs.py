#!/usr/bin/env python3
"""Write each repository's ``find`` filters into its docstring, from the whitelist.

The filters a ``find(**filters)`` accepts are declared once, as the repository module's
``FILTERS`` (``ims_repo.core.filters.FilterSet``). This script renders that declaration
as the last part of the ``find`` docstring in ``ims_repo/db/_async/repositories/`` (the
source of the sync twin), so the API reference lists every filter and order key, and
``tests/test_api_reference.py`` fails when the two drift apart.

    python scripts/filter_docs.py            # rewrite the docstrings, then:
    python scripts/async_to_sync.py          # regenerate the sync twin
    python scripts/filter_docs.py --check    # exit 1 if a docstring is not current
"""

from __future__ import annotations

import argparse
import ast
import importlib
import inspect
import sys
import textwrap
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal, get_args, get_origin
from uuid import UUID

from ims_repo.core.filters import FilterSet

ROOT = Path(__file__).resolve().parent.parent
REPOSITORIES = ROOT / "ims_repo" / "db" / "_async" / "repositories"
MARKER = "Filters, ANDed"
"""The first words of the generated part; everything after it in the docstring is ours."""
WIDTH = 92  # the line length (100) less a method docstring's indentation (8)

_TYPES: dict[Any, str] = {
    int: "int",
    str: "text",
    bool: "bool",
    datetime: "timestamp",
    date: "date",
    UUID: "uuid",
}


def type_label(python_type: Any) -> str:
    """How a column's values read in the docs: ``text``, ``"admin" | "user"``…"""
    if get_origin(python_type) is Literal:
        return " | ".join(f'``"{value}"``' for value in get_args(python_type))
    return _TYPES.get(python_type, getattr(python_type, "__name__", str(python_type)))


def filter_section(filters: FilterSet) -> str:
    """The filters and order keys of ``filters`` as reST/Markdown text (no indentation)."""
    header = (
        f"{MARKER} (every column ``c`` below is a filter ``c=``, and ``c_not=``, ``c_in=[…]``):"
    )
    lines = [*textwrap.wrap(header, WIDTH, break_on_hyphens=False), ""]
    for name, column in filters.columns.items():
        extra = []
        if column.is_text:
            extra.append(f"``{name}_like``")
        if column.nullable:
            extra.append(f"``has_{name}``")
        if column.is_time:
            extra += [f"``{name}_from``", f"``{name}_to``"]
        item = f"- ``{name}``: {type_label(column.type)}"
        if column.nullable:
            item += ", nullable"
        if extra:
            item += "; also " + ", ".join(extra)
        lines += textwrap.wrap(item, WIDTH, subsequent_indent="  ", break_on_hyphens=False)
    keys = ", ".join(f"``{key}``" for key in filters.order_keys)
    order = (
        f"Order keys (``-key`` for descending; ``{filters.key}``, the default, is added last "
        f"when left out): {keys}."
    )
    lines += ["", *textwrap.wrap(order, WIDTH, break_on_hyphens=False)]
    return "\n".join(lines)


def documented_modules() -> list[str]:
    """The async repository modules whose ``find`` takes ``**filters``."""
    names = []
    for path in sorted(REPOSITORIES.glob("*.py")):
        module = importlib.import_module(f"ims_repo.db._async.repositories.{path.stem}")
        if isinstance(getattr(module, "FILTERS", None), FilterSet) and _find_of(module):
            names.append(path.stem)
    return names


def _find_of(module: Any) -> Any:
    """The module's repository ``find`` method when it takes ``**filters``, else None."""
    for value in vars(module).values():
        if inspect.isclass(value) and value.__module__ == module.__name__:
            find = vars(value).get("find")
            kinds = [p.kind for p in inspect.signature(find).parameters.values()] if find else []
            if inspect.Parameter.VAR_KEYWORD in kinds:
                return find
    return None


def rewrite(source: str, section: str) -> str:
    """``source`` with ``section`` as the end of its ``find`` docstring."""
    tree = ast.parse(source)
    [find] = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.AsyncFunctionDef | ast.FunctionDef) and node.name == "find"
    ]
    docstring = find.body[0]
    assert isinstance(docstring, ast.Expr) and isinstance(docstring.value, ast.Constant)
    lines = source.splitlines(keepends=True)
    start, end = docstring.lineno - 1, docstring.end_lineno or docstring.lineno
    indent = " " * docstring.col_offset
    text = "".join(lines[start:end]).strip()
    body = text[3:-3]
    if MARKER in body:
        body = body[: body.index(MARKER)]
    body = body.rstrip()
    block = textwrap.indent(section, indent).splitlines()
    new = [f'{indent}"""{body}\n', "\n", *(f"{line}\n".replace(" \n", "\n") for line in block)]
    new.append(f'{indent}"""\n')
    return "".join([*lines[:start], *new, *lines[end:]])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a docstring is stale")
    args = parser.parse_args()
    stale = []
    for name in documented_modules():
        module = importlib.import_module(f"ims_repo.db._async.repositories.{name}")
        path = REPOSITORIES / f"{name}.py"
        source = path.read_text(encoding="utf-8")
        updated = rewrite(source, filter_section(module.FILTERS))
        if updated != source:
            stale.append(path.relative_to(ROOT))
            if not args.check:
                path.write_text(updated, encoding="utf-8")
    for path in stale:
        print(f"{path}: find's filters {'are stale' if args.check else 'rewritten'}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
