"""Where a database URL comes from when the caller gives none."""

from __future__ import annotations

import os

URL_VARIABLE = "IMS_DATABASE_URL"


def url_from_env() -> str:
    """``IMS_DATABASE_URL``, or "" (then libpq's ``PG*`` variables apply)."""
    return os.environ.get(URL_VARIABLE, "")
