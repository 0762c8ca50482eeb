"""Throwaway database servers on loopback, for the engine tests (tests/engines/) and ``python -m evals.engines``:
:mod:`evals.servers.postgres` (a PostgreSQL cluster from the machine's own binaries) and
:mod:`evals.servers.spark_connect` (a Spark Connect server from PySpark's own jars)."""
