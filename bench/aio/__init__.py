"""The async benchmarks of issue 12: ``AsyncDatabase`` against a hand-written async
psycopg floor on every read workload of ``bench``, 200 concurrent point reads on a pool
of 10 (tasks against threads), and the fresh ingest through ``await db.upsert_issues``
against the sync one.

Run it with ``python -m bench.aio [--size N]``. ``bench.aio.raw`` is the async floor,
``bench.aio.workloads`` the workloads (their operations and checks are the sync bench's),
``bench.aio.run`` measures and prints the table.
"""
