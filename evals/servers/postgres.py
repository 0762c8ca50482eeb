"""A throwaway PostgreSQL server for the engine tests and ``python -m evals.engines``: started once per session or
run, in a temp folder, on loopback.

The server's own binaries (``initdb``, ``pg_ctl``, ``postgres``) come from PATH or from Debian's
``/usr/lib/postgresql/<version>/bin`` (the newest); ``./dev.sh test`` installs Debian's ``postgresql``
package when it runs as root. PostgreSQL refuses to run as root, so as root the server runs as the
``postgres`` system user, in a folder under /tmp that user owns.

Authentication is real: only the Unix socket (in the temp folder, usable by the server's own user alone)
trusts its clients; every TCP client, the superuser included, logs in with a password (SCRAM). The server
listens on 127.0.0.1 only, on a free port. Durability is off (fsync, full-page writes, synchronous commit):
the data lives for one test session.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

#: the documented script that creates LORE's read-only role; ``create_reader`` applies exactly this file
READONLY_ROLE_SQL = Path(__file__).resolve().parents[2] / "docs" / "postgres-readonly-role.sql"
#: the role that script creates (one role for the whole server: each ``create_reader`` sets its password)
READER_ROLE = "lore_reader"
#: the reader's password unless a test passes another (with a quote, to prove the script quotes it)
READER_PASSWORD = "reader-Secret'1"
#: Debian and Ubuntu install each PostgreSQL version's binaries under here, in <version>/bin
DEBIAN_ROOT = Path("/usr/lib/postgresql")
#: the server binaries a bin folder must hold, and the client that applies the role script
SERVER_TOOLS = ("initdb", "pg_ctl", "postgres")
#: the system user the server runs as when the tests run as root
SYSTEM_USER = "postgres"
#: the superuser the tests log in as
ADMIN = "postgres"

SKIP_REASON = "PostgreSQL server binaries not found: ./dev.sh test installs Debian's postgresql when run as root"

#: server settings: loopback only, a socket only its user can use, no durability, small and quick
SERVER_SETTINGS: Mapping[str, str] = {
    "listen_addresses": "'127.0.0.1'",
    "unix_socket_permissions": "0700",
    "fsync": "off",
    "full_page_writes": "off",
    "synchronous_commit": "off",
    "shared_buffers": "'32MB'",
    "max_connections": "50",
    "password_encryption": "'scram-sha-256'",
    "log_min_messages": "warning",
}


class PgUnavailable(RuntimeError):
    """No PostgreSQL server can be started here (binaries or the system user are missing): the tests skip."""


def version_key(name: str) -> tuple[int, ...] | None:
    """The sort key of a Debian version folder's name; None for a name that is not a version.

    >>> version_key("15"), version_key("9.6"), version_key("lib")
    ((15,), (9, 6), None)
    >>> sorted(["9.6", "16", "15"], key=version_key)
    ['9.6', '15', '16']
    """
    parts = name.split(".")
    if not all(part.isdigit() for part in parts):
        return None
    return tuple(int(part) for part in parts)


def _has_tools(folder: Path) -> bool:
    return all(os.access(folder / tool, os.X_OK) and (folder / tool).is_file() for tool in SERVER_TOOLS)


def find_bindir(path: str | None = None, roots: Iterable[Path] = (DEBIAN_ROOT,)) -> Path | None:
    """The folder holding PostgreSQL's server binaries, or None.

    PATH comes first: the folder ``initdb`` resolves into (a symlink's target) or, failing that, the folder
    PATH names; it must hold ``pg_ctl`` and ``postgres`` too. Then the newest ``<root>/<version>/bin``.
    ``path`` stands in for $PATH (None reads the environment).
    """
    found = shutil.which("initdb", path=path)
    if found:
        for folder in (Path(os.path.realpath(found)).parent, Path(found).parent):
            if _has_tools(folder):
                return folder
    for root in roots:
        if not root.is_dir():
            continue
        versions = [(key, child) for child in root.iterdir() if (key := version_key(child.name)) is not None]
        for _, child in sorted(versions, reverse=True):
            if _has_tools(child / "bin"):
                return child / "bin"
    return None


def find_psql(bindir: Path) -> Path | None:
    """psql from the server's own bin folder, else from PATH."""
    own = bindir / "psql"
    if own.is_file() and os.access(own, os.X_OK):
        return own
    found = shutil.which("psql")
    return Path(found) if found else None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def clean_env() -> dict[str, str]:
    """The environment for PostgreSQL's tools: no PG* variable of the caller's steers them elsewhere."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("PG")}
    env["LC_ALL"] = "C"
    return env


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no server log)"


class PgServer:
    """One running PostgreSQL server in its own temp folder. Start it with :meth:`start`; :meth:`stop` ends it
    and removes the folder (stopping twice is harmless)."""

    def __init__(self, bindir: Path, root: Path, port: int, password: str, run_as: str | None) -> None:
        self.bindir = bindir
        self.root = root
        self.port = port
        #: the superuser's password
        self.password = password
        self._run_as = run_as
        self._stopped = False

    # --- the API the tests use ------------------------------------------------------------------------------
    @property
    def admin_url(self) -> str:
        """The superuser ``postgres`` over TCP with its password, on the ``postgres`` database."""
        return self.url_for(ADMIN, self.password, "postgres")

    def url_for(self, user: str, password: str, dbname: str = "postgres") -> str:
        """A ``postgresql://`` URL for a user and password on a database of this server, over TCP."""
        return (f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}@127.0.0.1:{self.port}/"
                f"{quote(dbname, safe='')}")

    def run_sql(self, statement: Any, dbname: str = "postgres", params: Sequence[Any] | None = None
                ) -> list[tuple[Any, ...]]:
        """Run SQL (a string or a ``psycopg.sql`` composition) as the superuser, autocommit; the rows it returns.

        Without ``params`` a string may hold several statements; the rows are the last one's.
        """
        import psycopg

        with psycopg.connect(self.url_for(ADMIN, self.password, dbname), autocommit=True) as conn:
            cursor = conn.execute(statement, params)
            return cursor.fetchall() if cursor.description else []

    def create_database(self, name: str) -> str:
        """Create a database (owned by the superuser); its superuser URL."""
        from psycopg import sql

        self.run_sql(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url_for(ADMIN, self.password, name)

    def run_psql_file(self, script: Path, dbname: str, variables: Mapping[str, str]) -> subprocess.CompletedProcess:
        """Run a SQL file through psql as the superuser on ``dbname``, with ``-v name=value`` for each variable.

        The result is returned whatever the exit status (the script's own ``ON_ERROR_STOP`` decides it).
        """
        psql = find_psql(self.bindir)
        if psql is None:
            raise PgUnavailable("psql not found (neither in the server's bin folder nor on PATH)")
        command = [str(psql), "-X", "-q", "--no-psqlrc", "-d", self.url_for(ADMIN, self.password, dbname)]
        for name, value in variables.items():
            command += ["-v", f"{name}={value}"]
        command += ["-f", str(script)]
        return subprocess.run(command, capture_output=True, text=True, env=clean_env(), cwd=self.root, timeout=60,
                              check=False)

    def create_reader(self, dbname: str, schema: str = "public", password: str = READER_PASSWORD) -> str:
        """Apply docs/postgres-readonly-role.sql on ``dbname`` for ``schema``, as an operator would; the reader's URL.

        The script creates the role the first time and updates it (password, limits) on later runs, so it
        may be applied to several databases of the server. The role is the server's, not the database's:
        a later call with another password changes it for every database.
        """
        done = self.run_psql_file(READONLY_ROLE_SQL, dbname,
                                  {"password": password, "dbname": dbname, "schema": schema})
        if done.returncode != 0:
            raise RuntimeError(f"{READONLY_ROLE_SQL.name} failed (psql exit {done.returncode}):\n"
                               f"{done.stderr}{done.stdout}")
        return self.url_for(READER_ROLE, password, dbname)

    # --- life cycle -----------------------------------------------------------------------------------------
    @classmethod
    def start(cls, bindir: Path) -> PgServer:
        """initdb a fresh cluster in a new temp folder and start it; returns once it accepts connections."""
        run_as = None
        if os.geteuid() == 0:
            try:
                account = pwd.getpwnam(SYSTEM_USER)
            except KeyError:
                raise PgUnavailable(f"running as root and there is no {SYSTEM_USER!r} system user to run "
                                    "PostgreSQL as (it refuses to run as root)") from None
            run_as = SYSTEM_USER
        # /tmp (not $TMPDIR): every parent folder must be traversable by the server's own user
        root = Path(tempfile.mkdtemp(prefix="lore-pg-", dir="/tmp" if run_as else None))
        server = cls(bindir, root, free_port(), secrets.token_urlsafe(18), run_as)
        try:
            os.chmod(root, 0o755)
            if run_as:
                os.chown(root, account.pw_uid, account.pw_gid)
            server._init_cluster()
            server._start()
        except BaseException:
            server.stop()
            raise
        return server

    def stop(self) -> None:
        """Stop the server at once (``pg_ctl stop -m immediate``) and remove its folder."""
        if self._stopped:
            return
        self._stopped = True
        try:
            if (self.data / "postmaster.pid").exists():
                done = self._tool("pg_ctl", "-D", self.data, "-m", "immediate", "-w", "-t", "30", "stop",
                                  check=False)
                if done.returncode != 0:
                    self._kill_postmaster()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    def _init_cluster(self) -> None:
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        os.chmod(pwfile, 0o600)
        self._give(pwfile)
        try:
            self._tool("initdb", "-D", self.data, "-U", ADMIN, f"--pwfile={pwfile}", "--auth-local=trust",
                       "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
        finally:
            pwfile.unlink(missing_ok=True)
        settings = dict(SERVER_SETTINGS, unix_socket_directories=f"'{self.root}'")
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("\n# the test server's own settings (evals/servers/postgres.py)\n")
            conf.writelines(f"{name} = {value}\n" for name, value in settings.items())

    def _start(self, attempts: int = 3) -> None:
        """pg_ctl start, waiting until the server accepts connections; another free port if this one was taken
        between choosing it and binding it."""
        for attempt in range(attempts):
            done = self._tool("pg_ctl", "-D", self.data, "-l", self.log, "-o", f"-p {self.port}", "-w", "-t", "60",
                              "start", check=False)
            if done.returncode == 0:
                return
            if "could not bind" not in _tail(self.log) or attempt == attempts - 1:
                break
            self.port = free_port()
        raise RuntimeError(f"PostgreSQL did not start (pg_ctl exit {done.returncode}): {done.stderr.strip()}\n"
                           f"server log:\n{_tail(self.log)}")

    def _give(self, path: Path) -> None:
        """Hand a file to the server's user (when the tests run as root)."""
        if self._run_as:
            account = pwd.getpwnam(self._run_as)
            os.chown(path, account.pw_uid, account.pw_gid)

    def _tool(self, name: str, *args: object, check: bool = True) -> subprocess.CompletedProcess:
        """Run one of the server's binaries, as the server's user, from inside the temp folder."""
        command = [str(self.bindir / name), *map(str, args)]
        if self._run_as:
            if shutil.which("runuser"):
                command = ["runuser", "-u", self._run_as, "--", *command]
            else:
                command = ["su", self._run_as, "-s", "/bin/sh", "-c", shlex.join(command)]
        done = subprocess.run(command, capture_output=True, text=True, env=clean_env(), cwd=self.root, timeout=120,
                              check=False)
        if check and done.returncode != 0:
            raise RuntimeError(f"{name} failed (exit {done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
        return done

    def _kill_postmaster(self) -> None:
        """The last resort when pg_ctl could not stop it: SIGKILL the postmaster this server started."""
        try:
            pid = int((self.data / "postmaster.pid").read_text().split()[0])
            os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError, IndexError):
            pass
