"""Suite-wide setup. The ims_* database fixtures come from the installed plugin
(``ims_repo.pytest_plugin``, a pytest11 entry point), exactly as a library user gets them;
only what the plugin must not ship to users belongs here."""

# `pytester` runs user-style test files in-process, for tests/test_plugin.py.
pytest_plugins = ["pytester"]
