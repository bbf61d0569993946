"""The benchmark suite of issue 5 / SPEC §8: ims_repo against raw psycopg + pydantic (the
floor) and SQLAlchemy 2 ORM written the way the usage guide shows (the peer).

Run it with ``python -m bench`` (``make bench``); ``python -m bench --help`` lists the
options. ``bench.data`` builds the database, ``bench.raw`` and ``bench.orm`` are the two
comparison implementations, ``bench.workloads`` runs each workload three ways and checks
that the three agree, ``bench.run`` measures and prints the table. ``bench.aio``
(``python -m bench.aio``) runs the read workloads and the ingest through ``AsyncDatabase``.
"""
