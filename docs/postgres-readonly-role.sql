-- LORE's read-only PostgreSQL role: run this once per database LORE reads, as that database's owner or a superuser.
--
--   psql "postgresql://admin@db.example.com/postgres" \
--        -v password="$LORE_READER_PASSWORD" -v dbname=analytics -v schema=public \
--        -f docs/postgres-readonly-role.sql
--
-- psql variables (-v name=value):
--   password  the role's password (required). psql quotes it as a literal (:'password'), so any character is safe.
--             It appears in the process list while psql runs and, if the server logs DDL, in the server log:
--             rotate it afterwards with \password lore_reader if either matters.
--   dbname    the database LORE reads (required); the script connects to it itself (\connect), so psql may start
--             on any database of the server.
--   schema    the schema whose tables LORE reads (required; LORE's PostgreSQL engine reads one schema).
--   owner     (optional) the role that will create tables in that schema later; defaults to the role running
--             this script. New tables are readable by lore_reader only when their creator is this role.
--
-- LORE then connects with postgresql://lore_reader:<password>@host/<dbname> (a password login; never a superuser).
-- Re-running is safe: the role is created the first time and updated (password, limits) afterwards, so run it again
-- for each further database or schema. Everything after the \connect runs in one transaction: on any error psql
-- stops (ON_ERROR_STOP) and nothing is changed.
--
-- What each statement does, and why:
--   CREATE ROLE lore_reader LOGIN PASSWORD ...   a role that logs in with a password and has no special power:
--     NOSUPERUSER NOCREATEDB NOCREATEROLE          cannot bypass permission checks, create databases or roles,
--     NOINHERIT                                    does not use the privileges of any role it is later made a member of,
--     NOREPLICATION NOBYPASSRLS                    cannot stream the server's WAL, nor read past row-level security,
--     CONNECTION LIMIT 20                          and holds at most 20 sessions (LORE's pool stays well below).
--   ALTER ROLE ... SET default_transaction_read_only = on
--                                                  every transaction starts read-only: a write fails even before the
--                                                  privilege checks. The role may switch it off itself (it is a plain
--                                                  setting), so it is a second line: the privileges below are the first.
--   ALTER ROLE ... SET statement_timeout = '30s'   the server cancels any statement running longer than 30 seconds.
--   ALTER ROLE ... SET idle_in_transaction_session_timeout = '60s'
--                                                  a session left idle inside a transaction is closed after a minute,
--                                                  so it cannot hold locks or snapshots.
--   REVOKE CREATE ON SCHEMA public FROM PUBLIC     no role may create objects in the public schema unless granted
--                                                  (PostgreSQL 15's default for new databases; older ones allowed it;
--                                                  skipped in a database that has no public schema).
--   REVOKE TEMPORARY ON DATABASE ... FROM PUBLIC   every role may create temporary tables by default (through PUBLIC);
--                                                  LORE needs none, so this takes that away from every role that
--                                                  relied on PUBLIC in this database; grant TEMPORARY back to those
--                                                  that need it. It is never granted to lore_reader (and revoked from
--                                                  it too, should it have been granted before).
--   GRANT CONNECT ON DATABASE ...                  lore_reader may connect to this database (even if CONNECT was
--                                                  revoked from PUBLIC).
--   GRANT USAGE ON SCHEMA ...                      it may look up objects in the schema,
--   GRANT SELECT ON ALL TABLES IN SCHEMA ...       and read every table and view there now.
--   ALTER DEFAULT PRIVILEGES FOR ROLE <owner> IN SCHEMA ... GRANT SELECT ON TABLES
--                                                  and every table or view <owner> creates there later.
-- lore_reader is granted nothing else: no INSERT, UPDATE, DELETE, TRUNCATE, CREATE or TEMPORARY anywhere.

\set ON_ERROR_STOP on

SELECT :{?password} AND :{?dbname} AND :{?schema} AS lore_variables_set \gset
\if :lore_variables_set
\else
DO $$ BEGIN RAISE EXCEPTION 'set every psql variable: psql -v password=... -v dbname=... -v schema=... -f postgres-readonly-role.sql'; END $$;
\endif

\connect -reuse-previous=on :"dbname"

\if :{?owner}
\else
SELECT current_user AS owner \gset
\endif
SELECT NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'lore_reader') AS lore_reader_is_new,
       EXISTS (SELECT FROM pg_catalog.pg_namespace WHERE nspname = 'public') AS lore_has_public \gset

BEGIN;

\if :lore_reader_is_new
CREATE ROLE lore_reader LOGIN PASSWORD :'password' NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS CONNECTION LIMIT 20;
\else
ALTER ROLE lore_reader LOGIN PASSWORD :'password' NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS CONNECTION LIMIT 20;
\endif
ALTER ROLE lore_reader SET default_transaction_read_only = on;
ALTER ROLE lore_reader SET statement_timeout = '30s';
ALTER ROLE lore_reader SET idle_in_transaction_session_timeout = '60s';

\if :lore_has_public
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
\endif
REVOKE TEMPORARY ON DATABASE :"dbname" FROM PUBLIC;
REVOKE TEMPORARY ON DATABASE :"dbname" FROM lore_reader;

GRANT CONNECT ON DATABASE :"dbname" TO lore_reader;
GRANT USAGE ON SCHEMA :"schema" TO lore_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA :"schema" TO lore_reader;
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA :"schema" GRANT SELECT ON TABLES TO lore_reader;

COMMIT;
