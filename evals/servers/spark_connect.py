"""A throwaway Spark Connect server for the engine tests and ``python -m evals.engines --spark connect``.

It is the server a Spark cluster runs (``sbin/start-connect-server.sh``), started from PySpark's own jars
(``pyspark/jars/spark-connect_*.jar``) with ``spark-submit`` in local mode: a JVM of its own, its gRPC port on
127.0.0.1 (a free one), no UI, an in-memory catalog and its warehouse and scratch folders in a temp folder that
:meth:`SparkConnectServer.stop` removes. It needs a Java 17 or 21 runtime, like Spark's local mode
(``./dev.sh test`` installs one when it runs as root).

LORE reaches it as it would a cluster's: ``LORE_SPARK_REMOTE=sc://127.0.0.1:PORT``. The server reads Parquet
folders at their own paths (it runs on this machine), and :meth:`SparkConnectServer.register_tables` puts a
folder's tables into the server's catalog, as an operator's catalog would hold them.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import warnings
from collections.abc import Mapping
from pathlib import Path

from evals.servers.postgres import free_port

#: the class ``start-connect-server.sh`` submits
SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"
#: how long the JVM may take to start and open its port
START_TIMEOUT_S = 180.0
#: the server's settings (the port and folders are added per server)
SERVER_CONF: Mapping[str, str] = {
    "spark.connect.grpc.binding.address": "127.0.0.1",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.catalogImplementation": "in-memory",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.sql.session.timeZone": "UTC",
}


class SparkUnavailable(RuntimeError):
    """What the server needs is missing here (PySpark's jars, Java): the caller skips, or fails when required."""


def spark_home() -> Path:
    """PySpark's own Spark distribution (``bin/spark-submit`` and ``jars/``), with the Connect server's jar."""
    try:
        import pyspark
    except ImportError:
        raise SparkUnavailable("pyspark is not installed: pip install -e '.[spark]'") from None
    home = Path(pyspark.__file__).resolve().parent
    if not (home / "bin" / "spark-submit").exists() or not list((home / "jars").glob("spark-connect_*.jar")):
        raise SparkUnavailable(f"PySpark at {home} has no spark-submit or no Spark Connect server jar")
    return home


def java_found() -> bool:
    java_home = os.environ.get("JAVA_HOME")
    return shutil.which("java") is not None or bool(java_home and Path(java_home, "bin", "java").exists())


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no server log)"


def _accepts(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        return probe.connect_ex(("127.0.0.1", port)) == 0


class SparkConnectServer:
    """One running Spark Connect server. Start it with :meth:`start`; :meth:`stop` ends it and removes its folder
    (stopping twice is harmless)."""

    def __init__(self, root: Path, port: int, process: subprocess.Popen) -> None:
        self.root = root
        self.port = port
        self._process = process
        self._stopped = False

    @property
    def url(self) -> str:
        """The ``sc://`` URL LORE reads from ``LORE_SPARK_REMOTE``."""
        return f"sc://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    @classmethod
    def start(cls, *, master: str = "local[2]", memory: str = "1g") -> SparkConnectServer:
        """Start the server's JVM and return once its port accepts connections."""
        home = spark_home()
        if not java_found():
            raise SparkUnavailable("no Java runtime for Spark: install Java 17 or 21 (./dev.sh test does, as root)")
        root = Path(tempfile.mkdtemp(prefix="lore-spark-connect-"))
        port = free_port()
        conf = {**SERVER_CONF, "spark.connect.grpc.binding.port": str(port),
                "spark.sql.warehouse.dir": str(root / "warehouse"), "spark.local.dir": str(root / "scratch")}
        command = [str(home / "bin" / "spark-submit"), "--class", SERVER_CLASS, "--master", master,
                   "--driver-memory", memory, "--name", "lore-test-connect-server"]
        for key, value in conf.items():
            command += ["--conf", f"{key}={value}"]
        env = {k: v for k, v in os.environ.items() if k not in ("SPARK_REMOTE", "PYSPARK_SUBMIT_ARGS")}
        env["SPARK_HOME"] = str(home)
        with (root / "server.log").open("wb") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       env=env, cwd=root, start_new_session=True)
        server = cls(root, port, process)
        try:
            server._wait()
        except BaseException:
            server.stop()
            raise
        return server

    def _wait(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"The Spark Connect server exited ({self._process.returncode}) before it "
                                   f"listened:\n{_tail(self.log)}")
            if _accepts(self.port) and "Spark Connect server started" in self.log.read_text(errors="replace"):
                return
            time.sleep(0.5)
        raise RuntimeError(f"The Spark Connect server did not listen within {START_TIMEOUT_S:g}s:\n{_tail(self.log)}")

    def register_tables(self, folder: Path, database: str | None = None) -> list[str]:
        """Put every table of a folder of Parquet tables into the server's catalog (its current database, or
        ``database``, created when missing), as an operator's catalog would hold them (a table already there is
        kept); returns their names. Uses a session of its own, then stops it."""
        from lore.execute.spark import table_sources

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas",
                                    category=FutureWarning)
            from pyspark.sql.connect.session import SparkSession as ConnectSession

            # the Connect builder itself: PySpark's SparkSession.builder would mark this whole process as Spark
            # Connect, and no local-mode session could start in it afterwards
            session = ConnectSession.builder.remote(self.url).create()
        try:
            names = []
            prefix = f"`{database}`." if database else ""
            if database:
                session.sql(f"CREATE DATABASE IF NOT EXISTS `{database}`")
            for source in table_sources(folder):
                location = str(source.path).replace("'", "\\'")
                session.sql(f"CREATE TABLE IF NOT EXISTS {prefix}`{source.name}` USING parquet LOCATION '{location}'")
                names.append(source.name)
            return names
        finally:
            session.stop()

    def stop(self) -> None:
        """Stop the JVM (SIGTERM to its process group, SIGKILL after 20 s) and remove the folder."""
        if self._stopped:
            return
        self._stopped = True
        try:
            if self._process.poll() is None:
                try:
                    os.killpg(self._process.pid, signal.SIGTERM)
                    self._process.wait(20)
                except subprocess.TimeoutExpired:
                    os.killpg(self._process.pid, signal.SIGKILL)
                    self._process.wait(10)
                except ProcessLookupError:
                    pass
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
