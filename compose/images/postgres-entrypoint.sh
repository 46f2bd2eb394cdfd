#!/bin/sh
# PostgreSQL for tests and compose: a fresh cluster on first start, trust
# authentication on loopback, listening on 127.0.0.1:${PGPORT:-5432}.
set -eu
PGPORT="${PGPORT:-5432}"
PGDATA=/var/lib/postgresql/data
bin=$(ls -d /usr/lib/postgresql/*/bin | head -1)
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  mkdir -p "$PGDATA" && chown postgres:postgres "$PGDATA"
  su postgres -s /bin/sh -c "$bin/initdb -D $PGDATA -U postgres --auth=trust" >/dev/null
fi
mkdir -p /var/run/postgresql && chown postgres:postgres /var/run/postgresql
exec su postgres -s /bin/sh -c "exec $bin/postgres -D $PGDATA -h 127.0.0.1 -p $PGPORT -c fsync=off -c synchronous_commit=off"
