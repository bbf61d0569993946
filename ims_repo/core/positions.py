"""A commit's place in the primary's write-ahead log: what read-your-writes waits for.

After a session on the primary commits, ``s.commit_position`` says where its commit
ended in the WAL (an LSN). ``db.session(replica=True, after=position)`` runs on a replica
only once that replica has replayed the WAL up to there, so it sees the commit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Self

from ims_repo.core.errors import InvalidInput

_LSN = re.compile(r"^(?P<high>[0-9A-Fa-f]{1,8})/(?P<low>[0-9A-Fa-f]{1,8})$")


@dataclass(frozen=True, order=True, slots=True)
class CommitPosition:
    """A position in the primary's WAL (a ``pg_lsn``), opaque to callers: pass it to
    ``db.session(replica=True, after=…)``. ``str()`` gives PostgreSQL's text form
    (``16/B374D848``) and ``CommitPosition.parse`` reads it back, for a position that
    must travel (a web request's cookie, a job queue)."""

    lsn: int

    @classmethod
    def parse(cls, text: str) -> Self:
        """The position written as PostgreSQL writes an LSN (``16/B374D848``)."""
        found = _LSN.match(text.strip())
        if found is None:
            raise InvalidInput(f"not a WAL position (an LSN such as '16/B374D848'): {text!r}")
        return cls(int(found.group("high"), 16) << 32 | int(found.group("low"), 16))

    def __str__(self) -> str:
        return f"{self.lsn >> 32:X}/{self.lsn & 0xFFFFFFFF:X}"
