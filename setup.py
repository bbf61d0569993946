"""The package list, which pyproject.toml cannot express: everything else is there.

Every package under ``ims_repo/`` is found (``find_namespace_packages``: folders without
``__init__.py`` such as ``queries/`` too), so a new folder cannot be left out of the
wheel. ``migrations/`` sits at the top of the repository for DBAs and ships inside the
wheel as ``ims_repo._migrations``, so an installed ``ims-repo migrate`` finds the same
files. ``scripts/smoke-wheel`` (run by ``make test``) proves the built wheel.
"""

from setuptools import find_namespace_packages, setup

setup(
    packages=[*find_namespace_packages(include=["ims_repo", "ims_repo.*"]), "ims_repo._migrations"],
    package_dir={"ims_repo._migrations": "migrations"},
)
