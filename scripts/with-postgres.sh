#!/usr/bin/env bash
# Run a command with a throwaway PostgreSQL server on the loopback interface.
#
#   scripts/with-postgres.sh CMD [ARGS...]
#
# Starts a fresh cluster in a temporary folder on a free 127.0.0.1 port, exports
# HIKISIG_TEST_PG_URL for the command, and stops and removes the cluster when the
# command ends (whatever its exit code, which it passes on). Under CI (CI=true,
# as root) Debian's postgresql is installed first if it is missing; elsewhere a
# missing PostgreSQL only prints a notice and the PostgreSQL tests are skipped.
set -euo pipefail

find_pgbin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

PGBIN=$(find_pgbin || true)
if [ -z "$PGBIN" ] && [ "${CI:-}" = "true" ] && [ "$(id -u)" = 0 ]; then
  echo "with-postgres: installing Debian's postgresql for the store tests" >&2
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
  PGBIN=$(find_pgbin || true)
fi
if [ -z "$PGBIN" ]; then
  echo "NOTICE: PostgreSQL is not installed: the PostgreSQL store tests will be skipped" >&2
  exec "$@"
fi

DATA=$(mktemp -d /tmp/hikisig-pg.XXXXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
if [ "$(id -u)" = 0 ]; then chown postgres "$DATA"; fi
cleanup() {
  as_pg "$PGBIN/pg_ctl" -D "$DATA/db" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$DATA"
}
trap cleanup EXIT
as_pg "$PGBIN/initdb" -D "$DATA/db" -U postgres --auth=trust -E UTF8 >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$DATA/db" -l "$DATA/log" -w \
  -o "-p $PORT -k $DATA -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
echo "with-postgres: PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PORT" >&2
export HIKISIG_TEST_PG_URL="postgresql://postgres@127.0.0.1:$PORT/postgres"
set +e
"$@"
rc=$?
set -e
exit $rc
