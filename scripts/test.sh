#!/usr/bin/env bash
# The whole test suite, from a fresh clone, with nothing installed by hand:
# whatever the tests need beyond the machine image is installed here.
# `.ci/run` calls exactly this script.
#
# Two runs: everything on SQLite (the embedded default), then the integration
# tests (tests/*.rs) again on a throwaway PostgreSQL 15 server that this script
# starts in a temporary directory and removes at the end. Unit tests do not
# touch a database and run once.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi
}

# Tools the tests drive as a partner would (openssl and curl: the by-hand
# walk-through and the SM2 interoperability checks), and the PostgreSQL server.
pg_bin() {
  local d
  for d in /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin; do
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ]; then
      echo "$d"
      return 0
    fi
  done
  return 1
}
missing=()
command -v openssl >/dev/null || missing+=(openssl)
command -v curl >/dev/null || missing+=(curl)
# Headless Chromium and ChromeDriver: the web interface's browser tests.
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
# A CJK font, so the screenshots the browser test takes show Chinese.
[ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || missing+=(fonts-wqy-microhei)
pg_bin >/dev/null || missing+=(postgresql-15)
if [ ${#missing[@]} -gt 0 ]; then
  # The PostgreSQL package would create and start a cluster of its own: not wanted.
  as_root mkdir -p /etc/postgresql-common
  if [ ! -e /etc/postgresql-common/createcluster.conf ]; then
    echo "create_main_cluster = false" | as_root tee /etc/postgresql-common/createcluster.conf >/dev/null
  fi
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" </dev/null
fi

# Schemathesis (PyPI) for tests/schemathesis.rs, with the package its
# signing hook uses; into the machine's python3 (pinned: its checks change).
if ! python3 -c 'import schemathesis, cryptography' 2>/dev/null ||
  [ "$(python3 -c 'import importlib.metadata as m; print(m.version("schemathesis"))')" != 4.32.5 ]; then
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
    'schemathesis==4.32.5' 'cryptography>=42'
fi

cargo fmt --check
cargo clippy --locked --all-targets -- -D warnings
cargo test --locked

# --- The integration tests on a throwaway PostgreSQL server ---------------
bin=$(pg_bin) || { echo "PostgreSQL server binaries not found" >&2; exit 1; }
pg_tmp=$(mktemp -d /tmp/gateway-pg.XXXXXX)
# initdb and postgres refuse to run as root: as root (CI), run them as an
# unprivileged user, Debian's `postgres` if the package made it.
pg_user=""
if [ "$(id -u)" -eq 0 ]; then
  pg_user=postgres
  id -u "$pg_user" >/dev/null 2>&1 || {
    pg_user=gateway-pg
    id -u "$pg_user" >/dev/null 2>&1 ||
      useradd --system --no-create-home --shell /usr/sbin/nologin "$pg_user"
  }
  chown "$pg_user" "$pg_tmp"
fi
pg() {
  # From the private directory: the unprivileged user may not enter the cwd.
  if [ -n "$pg_user" ]; then (cd "$pg_tmp" && runuser -u "$pg_user" -- "$@"); else "$@"; fi
}
stop_pg() {
  pg "$bin/pg_ctl" -D "$pg_tmp/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$pg_tmp"
}
trap stop_pg EXIT
pg "$bin/initdb" -D "$pg_tmp/data" -U postgres -A trust -E UTF8 --locale=C >"$pg_tmp/initdb.log" 2>&1 ||
  { cat "$pg_tmp/initdb.log" >&2; exit 1; }
# Unix socket only, in the private directory: no port to collide with another
# server on the machine. A throwaway server needs no durability (fsync off).
# Connections: each test gateway opens up to 8 reader + 8 writer connections.
pg "$bin/pg_ctl" -D "$pg_tmp/data" -l "$pg_tmp/server.log" -w -t 60 \
  -o "-c listen_addresses='' -k $pg_tmp -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
  start >/dev/null || { cat "$pg_tmp/server.log" >&2; exit 1; }
echo "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on $pg_tmp: running the integration tests again"
GATEWAY_TEST_DATABASE_URL="postgres://postgres@localhost/postgres?host=$pg_tmp" \
  GATEWAY_TEST_PG_BIN="$bin" \
  cargo test --locked --test '*'
