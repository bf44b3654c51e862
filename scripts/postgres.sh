#!/usr/bin/env bash
# A throwaway PostgreSQL cluster on loopback for the storage tests.
#
#   eval "$(bash scripts/postgres.sh start)"   # exports MFREC_TEST_POSTGRES (and MFREC_PG_DIR)
#   bash scripts/postgres.sh stop              # stops it and removes its folder
#
# Uses Debian's postgresql (installed by .ci/run); runs the server as the postgres user when
# started by root, since PostgreSQL refuses to run as root.
set -euo pipefail
command_name=${1:-}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
  echo "postgres.sh: PostgreSQL is not installed (Debian: apt-get install postgresql)" >&2
  exit 1
fi
as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
case "$command_name" in
  start)
    dir=$(mktemp -d /tmp/mfrec-pg.XXXXXX)
    port=${MFREC_PG_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
    if [ "$(id -u)" = 0 ]; then chown postgres "$dir"; fi
    as_owner "$bin/initdb" -D "$dir/data" -A trust -U postgres --no-sync >"$dir/initdb.log" 2>&1
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=on" start >/dev/null
    echo "export MFREC_PG_DIR=$dir"
    echo "export MFREC_TEST_POSTGRES=postgresql+psycopg://postgres@127.0.0.1:$port/postgres"
    ;;
  stop)
    dir=${MFREC_PG_DIR:?postgres.sh stop: MFREC_PG_DIR is not set}
    as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$dir"
    ;;
  *)
    echo "usage: bash scripts/postgres.sh start|stop" >&2
    exit 2
    ;;
esac
