#!/usr/bin/env bash
# LORE's two commands (demo, test), and the benchmarks and the audit. Each creates (or reuses) .venv first.
#   ./dev.sh demo   set up, build the demo project in ./demo and open the chat page on it
#   ./dev.sh test   set up with the test extras, the local model (and Chromium, PostgreSQL and Java for Spark), check it (lore doctor), run the whole test suite
#   ./dev.sh bench  set up and run the benchmarks (pipeline at scales 1 and 10, then the 5,000-metric catalog)
#   ./dev.sh load   set up and load-test the HTTP API with Locust (50 users, scales 1 and 10; arguments go to it)
#   ./dev.sh audit  check the locked dependencies for known vulnerabilities (pip-audit)
#   ./dev.sh doctor set up, then check the set-up (lore doctor [--project DIR])
# Idempotent: the environment is reinstalled only when pyproject.toml or requirements.lock change,
# and the demo warehouse is rebuilt only when missing (or with a different LORE_DEMO_SCALE).
set -euo pipefail
cd "$(dirname "$0")"

VENV=.venv
PY="$VENV/bin/python"

find_python() {
  for candidate in "${PYTHON:-}" python3.11 python3; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  echo "LORE needs Python 3.11: install it, or set PYTHON=/path/to/python3.11" >&2
  return 1
}

# covers INSTALLED WANTED: every extra in WANTED (comma-separated; "base" is none) is in INSTALLED
covers() {
  local extra
  for extra in ${2//,/ }; do
    [ "$extra" = base ] && continue
    [[ ",$1," == *",$extra,"* ]] || return 1
  done
}

setup() {
  local extras="$1"
  if [ ! -x "$PY" ]; then
    local base; base=$(find_python)
    echo "Creating $VENV with $base" >&2
    "$base" -m venv "$VENV"
    "$PY" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
  fi
  local with_local=0
  [[ ",$extras," == *",local,"* ]] && with_local=1
  if [ "$with_local" = 1 ]; then
    # llama.cpp for --model local, built with portable flags into LORE's own wheel cache, never pip's native
    # default or a native wheel from pip's cache (lore/llm/build.py says why); a no-op once it is installed
    "$PY" lore/llm/build.py install --lock requirements.lock >&2
  fi
  local hash; hash=$(cat pyproject.toml requirements.lock 2>/dev/null | sha256sum | cut -c1-16)
  local have; have=$(cat "$VENV/.lore-installed" 2>/dev/null || true)
  if [ "${have%%-*}" != "$hash" ] || ! covers "${have#*-}" "$extras"; then
    echo "Installing LORE and its dependencies into $VENV (first run takes a few minutes)" >&2
    "$PY" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
    local constraint=()
    [ -f requirements.lock ] && constraint=(-c requirements.lock)
    local target="."
    [ "$extras" = base ] || target=".[$extras]"
    "$PY" -m pip install --quiet --disable-pip-version-check "${constraint[@]}" -e "$target" >&2
    echo "$hash-$extras" > "$VENV/.lore-installed"
  fi
  if [ "$with_local" = 1 ] && ! "$PY" lore/llm/build.py status >/dev/null; then
    echo "The installed llama-cpp-python is not LORE's portable build: $("$PY" lore/llm/build.py status)" >&2
    return 1
  fi
}

# The browser test drives Debian's Chromium (never a downloaded browser build); install it when we may.
browser() {
  [ -x /usr/bin/chromium ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing Chromium for the browser test (apt-get)" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) >&2 ||
      echo "Could not install Chromium: the browser test will be skipped" >&2
  else
    echo "No /usr/bin/chromium and no root to install it: the browser test will be skipped" >&2
  fi
}

# The PostgreSQL engine tests start a throwaway server from Debian's binaries (evals/servers/postgres.py); install
# them when we may. Nothing is started here (Debian's package may set up and start its own cluster; the tests never use it).
postgres_server() {
  # once the binaries are here, the tests must use them: a server that fails to start fails them, never skips them
  if command -v initdb >/dev/null 2>&1 || compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
    export LORE_TEST_POSTGRES=required
    return 0
  fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing PostgreSQL for the PostgreSQL engine tests (apt-get)" >&2
    if (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) >&2; then
      export LORE_TEST_POSTGRES=required
    else
      echo "Could not install PostgreSQL: the PostgreSQL engine tests will be skipped" >&2
    fi
  else
    echo "No PostgreSQL server binaries (initdb) and no root to install them: the PostgreSQL engine tests will be skipped" >&2
  fi
}

# The Spark engine tests start Spark in local mode, which needs a Java runtime (Debian's OpenJDK 17); install it
# when we may.
java_runtime() {
  # once Java is here, the tests must use it: a Spark that fails to start fails them, never skips them
  if command -v java >/dev/null 2>&1; then
    export LORE_TEST_SPARK=required
    return 0
  fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing Java for the Spark engine tests (apt-get)" >&2
    if (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null) >&2; then
      export LORE_TEST_SPARK=required
    else
      echo "Could not install Java: the Spark engine tests will be skipped" >&2
    fi
  else
    echo "No Java runtime (java) and no root to install one: the Spark engine tests will be skipped" >&2
  fi
}

cmd="${1:-help}"
[ $# -gt 0 ] && shift
case "$cmd" in
  demo)
    setup base
    "$VENV/bin/lore" demo init demo --scale "${LORE_DEMO_SCALE:-1}"
    "$VENV/bin/lore" index build --project demo
    echo "Opening the chat page at http://${LORE_UI_HOST:-127.0.0.1}:${LORE_UI_PORT:-8501} (Ctrl+C to stop)" >&2
    exec "$VENV/bin/lore" ui --project demo --host "${LORE_UI_HOST:-127.0.0.1}" --port "${LORE_UI_PORT:-8501}" "$@"
    ;;
  test)
    setup dev,local
    browser
    postgres_server
    java_runtime
    # a broken set-up (a local model that crashes, a missing embedder) stops here with its fix, not mid-suite
    if ! "$VENV/bin/lore" doctor; then
      echo "lore doctor found a problem with this set-up (above, with its fix): the tests were not run." >&2
      exit 1
    fi
    exec "$PY" -m pytest "$@"
    ;;
  setup)
    setup dev,local
    ;;
  doctor)
    setup dev,local
    exec "$VENV/bin/lore" doctor "$@"
    ;;
  bench)
    setup base
    "$PY" -m evals.bench.pipeline --scales 1,10 "$@"
    "$PY" -m evals.bench.catalog
    ;;
  load)
    setup dev
    exec "$PY" -m evals.bench.load "$@"
    ;;
  audit)
    setup dev,local
    exec "$PY" -m evals.audit "$@"
    ;;
  *)
    sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
    [ "$cmd" = help ] || exit 2
    ;;
esac
