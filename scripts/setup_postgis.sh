#!/usr/bin/env bash
# Set up PostgreSQL 15 + PostGIS for the karte PostGIS store on Debian. Idempotent: run it again
# any time. Installs postgresql-15-postgis-3 only when missing, starts the cluster when it is
# down, creates the database and the postgis extension, migrates the schema (when .venv exists)
# and sets the password of the application role karte_app.
#
#   eval "$(bash scripts/setup_postgis.sh)"      # exports the two URLs into this shell
#
# stdout: shell lines only (messages go to stderr):
#   KARTE_TEST_DATABASE_URL      the database owner (migrations, test set-up)
#   KARTE_TEST_APP_DATABASE_URL  the application role karte_app (row-level security applies)
#   and, as a comment, the KARTE_DATABASE_URL that points the karte commands at this database
#   (not exported: the rest of the test suite expects the GeoPackage default).
# Environment: KARTE_PG_DATABASE (default karte_test), KARTE_PG_HOST (127.0.0.1), KARTE_PG_PORT
# (5432), KARTE_APP_PASSWORD (default karte-dev: a development password, change it anywhere else),
# KARTE_SKIP_APT=1 to never install packages.
set -euo pipefail
cd "$(dirname "$0")/.."

PG_VERSION=15
DB=${KARTE_PG_DATABASE:-karte_test}
HOST=${KARTE_PG_HOST:-127.0.0.1}
PORT=${KARTE_PG_PORT:-5432}
APP_PASSWORD=${KARTE_APP_PASSWORD:-karte-dev}
ADMIN=${KARTE_PG_ADMIN:-$(id -un)}
SUDO=""
[ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && SUDO="sudo"
say() { echo "setup_postgis: $*" >&2; }

# 1. Packages (only when missing).
if ! dpkg -s "postgresql-$PG_VERSION-postgis-3" >/dev/null 2>&1; then
  if [ "${KARTE_SKIP_APT:-0}" = "1" ]; then
    say "postgresql-$PG_VERSION-postgis-3 is missing and KARTE_SKIP_APT=1"; exit 1
  fi
  say "installing postgresql-$PG_VERSION-postgis-3"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    "postgresql-$PG_VERSION" "postgresql-$PG_VERSION-postgis-3" >/dev/null
fi

# 2. The server: create the cluster if there is none, start it when it is down, wait for it.
if ! pg_lsclusters -h 2>/dev/null | awk -v v="$PG_VERSION" '$1 == v && $2 == "main"' | grep -q .; then
  say "creating cluster $PG_VERSION/main"
  $SUDO pg_createcluster "$PG_VERSION" main >/dev/null
fi
if ! pg_lsclusters -h | awk -v v="$PG_VERSION" '$1 == v && $2 == "main" {print $4}' | grep -q online; then
  say "starting cluster $PG_VERSION/main"
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" main start
fi
for _ in $(seq 1 30); do
  pg_isready -q -h "$HOST" -p "$PORT" && break
  sleep 1
done
pg_isready -q -h "$HOST" -p "$PORT" || { say "server on $HOST:$PORT does not answer"; exit 1; }

# 3. As the postgres superuser (peer authentication over the local socket): an admin role for
#    the current OS user, the database, the extension.
as_postgres() {
  if [ "$(id -un)" = postgres ]; then "$@"
  elif [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"
  else sudo -u postgres "$@"; fi
}
psql_pg() { as_postgres psql -X -q -v ON_ERROR_STOP=1 -p "$PORT" "$@"; }
if [ "$(psql_pg -d postgres -Atc "SELECT 1 FROM pg_roles WHERE rolname = '$ADMIN'")" != 1 ]; then
  say "creating database role $ADMIN (superuser: migrations and test set-up)"
  psql_pg -d postgres -c "CREATE ROLE \"$ADMIN\" LOGIN SUPERUSER"
fi
if [ "$(psql_pg -d postgres -Atc "SELECT 1 FROM pg_database WHERE datname = '$DB'")" != 1 ]; then
  say "creating database $DB"
  psql_pg -d postgres -c "CREATE DATABASE \"$DB\" OWNER \"$ADMIN\""
fi
psql_pg -d "$DB" -c "CREATE EXTENSION IF NOT EXISTS postgis"

# 4. The schema (karte db upgrade) and the application role's password.
ADMIN_URL="postgresql+psycopg://$ADMIN@/$DB?host=/var/run/postgresql&port=$PORT"
APP_URL="postgresql+psycopg://karte_app:$APP_PASSWORD@$HOST:$PORT/$DB"
if [ -x .venv/bin/python ]; then
  .venv/bin/python -m karte.store.cli upgrade "$ADMIN_URL" >&2
  psql_pg -d postgres -c "ALTER ROLE karte_app PASSWORD '$APP_PASSWORD'"
else
  say "no .venv yet: run scripts/setup.sh, then this script again (it migrates the schema)"
fi
say "ready: database $DB on $HOST:$PORT ($(psql_pg -d "$DB" -Atc 'SELECT postgis_lib_version()' | sed 's/^/PostGIS /'))"
echo "export KARTE_TEST_DATABASE_URL='$ADMIN_URL'"
echo "export KARTE_TEST_APP_DATABASE_URL='$APP_URL'"
echo "# karte commands on this database: export KARTE_DATABASE_URL='$APP_URL'"
