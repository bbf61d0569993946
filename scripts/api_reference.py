#!/usr/bin/env python3
"""Build the API reference (HTML, with pdoc) from the docstrings: ``make docs``.

    python scripts/api_reference.py [OUTPUT]     # default build/docs; open OUTPUT/index.html

What it documents: ``ims_repo`` (the public API: databases, sessions, records, errors),
the repositories a session hands out (``s.users``…: the blocking ones and their asyncio
twins), the ``find`` filter forms (``ims_repo.core.filters``) and the importer. A module
that fails to import, or any other warning pdoc gives, fails the build (exit 1), so
``tests/test_api_reference.py`` catches a broken reference.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import pdoc
import pdoc.render

ROOT = Path(__file__).resolve().parent.parent
MODULES = (
    "ims_repo",
    "ims_repo.db._sync.repositories",
    "ims_repo.db._async.repositories",
    "ims_repo.core.filters",
    "ims_repo.services.importer",
)
FOOTER = "ims_repo: the sync repositories are generated from the async ones (same docstrings)."


def build(output: Path) -> None:
    """Write the reference into ``output``; any pdoc warning is an error."""
    pdoc.render.configure(docformat="restructuredtext", footer_text=FOOTER)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pdoc.pdoc(*MODULES, output_directory=output)


def main() -> int:
    output = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "build" / "docs"
    try:
        build(output)
    except Warning as warning:
        print(f"api reference: {warning}", file=sys.stderr)
        return 1
    print(f"api reference: {output / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
