#!/usr/bin/env bash
# Make sure a PostgreSQL server answers on 127.0.0.1:5432 for the store's PostgreSQL tests.
# Uses a running one; otherwise starts the Debian cluster, installing Debian's package when
# possible. Never fails the build: when no server can be had, the tests skip with a reason.
set -u
PORT="${NASFORGE_PG_PORT:-5432}"

ready() { pg_isready -q -h 127.0.0.1 -p "$PORT" 2>/dev/null; }

if command -v pg_isready >/dev/null 2>&1 && ready; then
  echo "postgres: server on 127.0.0.1:$PORT is up"; exit 0
fi
if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "postgres: installing Debian's postgresql package"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) \
      >/dev/null 2>&1 || echo "postgres: apt-get install failed"
  fi
fi
if command -v pg_ctlcluster >/dev/null 2>&1; then
  version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
  if [ -n "$version" ]; then
    conf=/etc/postgresql/$version/main
    # loopback only, trust for local test connections
    grep -q "^listen_addresses = '127.0.0.1'" "$conf/postgresql.conf" 2>/dev/null ||
      echo "listen_addresses = '127.0.0.1'" >> "$conf/postgresql.conf" 2>/dev/null
    grep -q "^host all all 127.0.0.1/32 trust" "$conf/pg_hba.conf" 2>/dev/null ||
      sed -i '1i host all all 127.0.0.1/32 trust' "$conf/pg_hba.conf" 2>/dev/null
    pg_ctlcluster --skip-systemctl-redirect "$version" main start >/dev/null 2>&1 ||
      pg_ctlcluster "$version" main start >/dev/null 2>&1 || true
    for _ in $(seq 1 30); do ready && break; sleep 1; done
  fi
fi
if command -v pg_isready >/dev/null 2>&1 && ready; then
  echo "postgres: server on 127.0.0.1:$PORT is up"
else
  echo "postgres: no server could be started; the PostgreSQL store tests will be skipped"
fi
exit 0
