"""The test server itself, and docs/postgres-readonly-role.sql applied to it as an operator would.

The reader role's promise is tested for what stops each write: a session starts read-only (a role setting),
but the role may switch that off itself, so the privileges are what must refuse every write.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from evals.servers.postgres import READER_ROLE, READONLY_ROLE_SQL, PgServer, find_bindir

psycopg = pytest.importorskip("psycopg")
errors = psycopg.errors


def _fake_bindir(folder: Path, tools: tuple[str, ...] = ("initdb", "pg_ctl", "postgres", "psql")) -> Path:
    folder.mkdir(parents=True)
    for tool in tools:
        (folder / tool).write_text("#!/bin/sh\n")
        os.chmod(folder / tool, 0o755)
    return folder


def test_binaries_come_from_path_first_then_the_newest_debian_version(tmp_path: Path) -> None:
    debian = tmp_path / "lib"
    for version in ("9.6", "15", "16"):
        _fake_bindir(debian / version / "bin")
    (debian / "common").mkdir()
    assert find_bindir(path=str(tmp_path / "nothing"), roots=[debian]) == debian / "16" / "bin"
    on_path = _fake_bindir(tmp_path / "usr-local-bin")
    assert find_bindir(path=str(on_path), roots=[debian]) == on_path
    # an initdb on PATH without pg_ctl and postgres beside it does not count
    lone = _fake_bindir(tmp_path / "lone", ("initdb",))
    assert find_bindir(path=str(lone), roots=[debian]) == debian / "16" / "bin"
    assert find_bindir(path=str(lone), roots=[tmp_path / "missing"]) is None


def test_symlinked_initdb_resolves_to_its_own_bin_folder(tmp_path: Path) -> None:
    real = _fake_bindir(tmp_path / "pg" / "bin")
    links = tmp_path / "links"
    links.mkdir()
    (links / "initdb").symlink_to(real / "initdb")
    assert find_bindir(path=str(links), roots=[]) == real


def test_the_server_listens_on_loopback_with_fast_unsafe_settings(pg_server: PgServer) -> None:
    assert pg_server.run_sql("SELECT 1 + 1") == [(2,)]
    settings = dict(pg_server.run_sql(
        "SELECT name, setting FROM pg_settings WHERE name IN ('listen_addresses', 'port', 'fsync', "
        "'full_page_writes', 'synchronous_commit', 'max_connections', 'unix_socket_directories')"))
    assert settings == {
        "listen_addresses": "127.0.0.1", "port": str(pg_server.port), "fsync": "off", "full_page_writes": "off",
        "synchronous_commit": "off", "max_connections": "50", "unix_socket_directories": str(pg_server.root),
    }
    assert pg_server.run_sql("SELECT host(inet_server_addr()), current_user") == [("127.0.0.1", "postgres")]


def test_tcp_logins_need_the_password_even_for_the_superuser(pg_server: PgServer) -> None:
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(pg_server.url_for("postgres", "not-the-password"), connect_timeout=5).close()


@pytest.fixture()
def reader_db(pg_server: PgServer, pg_database: str) -> tuple[str, str]:
    """A database with a table made before the role script ran and one made after; (database, reader URL)."""
    pg_server.run_sql("CREATE TABLE before_script (id integer PRIMARY KEY, label text); "
                      "INSERT INTO before_script VALUES (1, 'one'), (2, 'two')", pg_database)
    url = pg_server.create_reader(pg_database)
    pg_server.run_sql("CREATE TABLE after_script (id integer); INSERT INTO after_script VALUES (7)", pg_database)
    return pg_database, url


def test_the_reader_reads_tables_made_before_and_after_the_script(reader_db: tuple[str, str]) -> None:
    _, url = reader_db
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (READER_ROLE,)
        assert conn.execute("SELECT id, label FROM before_script ORDER BY id").fetchall() == [(1, "one"), (2, "two")]
        assert conn.execute("SELECT id FROM after_script").fetchall() == [(7,)]


def test_the_role_has_the_documented_attributes_and_settings(pg_server: PgServer, reader_db: tuple[str, str]
                                                             ) -> None:
    rows = pg_server.run_sql(
        "SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolinherit, rolreplication, rolbypassrls, "
        "rolconnlimit, rolconfig FROM pg_roles WHERE rolname = %s", params=[READER_ROLE])
    assert rows == [(True, False, False, False, False, False, False, 20,
                     ["default_transaction_read_only=on", "statement_timeout=30s",
                      "idle_in_transaction_session_timeout=60s"])]
    with psycopg.connect(reader_db[1]) as conn:
        shown = [conn.execute(f"SHOW {name}").fetchone()[0]
                 for name in ("default_transaction_read_only", "statement_timeout",
                              "idle_in_transaction_session_timeout")]
    assert shown == ["on", "30s", "1min"]


WRITES = {
    "insert": "INSERT INTO before_script VALUES (3, 'three')",
    "update": "UPDATE before_script SET label = 'changed'",
    "delete": "DELETE FROM before_script",
    "truncate": "TRUNCATE before_script",
    "create table": "CREATE TABLE mine (id integer)",
    "create temp table": "CREATE TEMP TABLE mine (id integer)",
    "create schema": "CREATE SCHEMA mine",
    "create view": "CREATE VIEW mine AS SELECT 1 AS one",
}


@pytest.mark.parametrize("statement", WRITES.values(), ids=WRITES.keys())
def test_every_write_is_refused_read_only_first_then_by_privilege(reader_db: tuple[str, str], statement: str
                                                                  ) -> None:
    """As the session starts: refused as read-only. With read-only switched off (the role may): no privilege."""
    _, url = reader_db
    with psycopg.connect(url, autocommit=True) as conn:
        with pytest.raises(errors.ReadOnlySqlTransaction):
            conn.execute(statement)
        conn.execute("SET default_transaction_read_only = off")
        assert conn.execute("SHOW transaction_read_only").fetchone() == ("off",)
        with pytest.raises(errors.InsufficientPrivilege, match="permission denied"):
            conn.execute(statement)


def test_the_reader_wrote_nothing(pg_server: PgServer, reader_db: tuple[str, str]) -> None:
    database, url = reader_db
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET default_transaction_read_only = off")
        for statement in WRITES.values():
            with pytest.raises(psycopg.Error):
                conn.execute(statement)
    assert pg_server.run_sql("SELECT id, label FROM before_script ORDER BY id", database) == [(1, "one"), (2, "two")]
    assert pg_server.run_sql("SELECT count(*) FROM pg_class WHERE relname = 'mine'", database) == [(0,)]


def test_a_wrong_password_is_refused(pg_server: PgServer, reader_db: tuple[str, str]) -> None:
    database, _ = reader_db
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(pg_server.url_for(READER_ROLE, "wrong", database), connect_timeout=5).close()


def test_the_script_can_run_again_for_another_database_and_schema(pg_server: PgServer, pg_database: str) -> None:
    """The role exists by now (other tests made it): a second run updates it and grants on this database, one
    without a public schema (hardened databases drop it)."""
    pg_server.run_sql('DROP SCHEMA public; CREATE SCHEMA "Sales Data"; CREATE TABLE "Sales Data".orders (id integer); '
                      'INSERT INTO "Sales Data".orders VALUES (1)', pg_database)
    try:
        url = pg_server.create_reader(pg_database, schema="Sales Data", password='an"other one')
        with psycopg.connect(url) as conn:
            assert conn.execute('SELECT id FROM "Sales Data".orders').fetchall() == [(1,)]
    finally:
        pg_server.create_reader(pg_database, schema="Sales Data")  # the usual password again, for later tests


def test_the_script_stops_without_its_variables(pg_server: PgServer, pg_database: str) -> None:
    done = pg_server.run_psql_file(READONLY_ROLE_SQL, pg_database, {"dbname": pg_database})
    assert done.returncode == 3
    assert "set every psql variable" in done.stderr
    # it stopped before changing anything: the database keeps its default privileges
    assert pg_server.run_sql("SELECT datacl IS NULL FROM pg_database WHERE datname = %s", params=[pg_database]) == [
        (True,)]
