#!/usr/bin/env bash
# Make sure PostgreSQL's server binaries (initdb, pg_ctl) are here for the store's PostgreSQL
# tests, which start a cluster of their own (tests/pg_cluster.py: a temporary folder, an
# unprivileged user, a free loopback port) and delete it afterwards. Installs Debian's package
# when they are missing (as root, with apt-get). Never starts, stops or configures any existing
# server. Never fails the build: without the binaries the PostgreSQL tests skip with the reason.
set -u

have() {
  command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1 && return 0
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1
}

have && exit 0
if [ -n "${NASFORGE_TEST_PG_URL:-}" ]; then
  exit 0  # the tests use that server instead
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "postgres: no initdb/pg_ctl here and they cannot be installed (not root, or no apt-get);" \
    "the PostgreSQL store tests will be skipped (or set NASFORGE_TEST_PG_URL to a server)"
  exit 0
fi
echo "postgres: installing Debian's postgresql package for its initdb and pg_ctl"
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq postgresql >/dev/null 2>&1 ||
  (apt-get update -qq && apt-get install -y -qq postgresql) >/dev/null 2>&1
have || echo "postgres: installing Debian's postgresql package failed;" \
  "the PostgreSQL store tests will be skipped"
exit 0
