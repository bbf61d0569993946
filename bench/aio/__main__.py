"""``python -m bench.aio``: see ``bench.aio.run``."""

import importlib.util
import sys

if importlib.util.find_spec("sqlalchemy") is None:
    print("bench needs the `bench` extra (SQLAlchemy): pip install -e '.[bench]'", file=sys.stderr)
    raise SystemExit(2)

from bench.aio.run import main  # after the check, which names the fix

raise SystemExit(main())
