#!/usr/bin/env bash
# Make sure a local PostgreSQL serves the Steering Lab databases.
#
# Idempotent. Run as root on Debian: installs the server if its binaries are
# missing, creates and starts the cluster if needed, creates the role and the
# databases if needed, and checks password login over TCP on localhost (the
# way the app's JDBC driver connects). Prints one line per action taken and
# one final line; takes well under a second when everything is already up.
#
# Environment (all optional):
#   LAB_DB_URL        jdbc:postgresql://localhost:5432/steering  (port and db name are taken from it;
#                     a host other than localhost/127.0.0.1/::1 means "not ours": nothing is done)
#   LAB_DB_USER       steering
#   LAB_DB_PASSWORD   steering
#   LAB_DB_NAME       database name (default: from LAB_DB_URL, i.e. steering)
#   LAB_DB_TEST_NAME  steering_test
#   LAB_PG_VERSION    server major version (default: newest installed, else what apt installs)
#   LAB_PG_CLUSTER    main
#   LAB_PG_WAIT       seconds to wait for the server to accept connections (default 30)
set -euo pipefail

say() { printf 'ensure-postgres: %s\n' "$*"; }
die() { printf 'ensure-postgres: ERROR: %s\n' "$*" >&2; exit 1; }

DB_URL=${LAB_DB_URL:-jdbc:postgresql://localhost:5432/steering}
DB_USER=${LAB_DB_USER:-steering}
DB_PASSWORD=${LAB_DB_PASSWORD:-steering}
TEST_DB=${LAB_DB_TEST_NAME:-steering_test}
CLUSTER=${LAB_PG_CLUSTER:-main}
WAIT_S=${LAB_PG_WAIT:-30}

# jdbc:postgresql://HOST[:PORT]/DB[?params]
url_re='^jdbc:postgresql://(\[[^]]*\]|[^:/?]+)(:([0-9]+))?/([^?]+)'
[[ $DB_URL =~ $url_re ]] || die "cannot parse LAB_DB_URL=$DB_URL (expected jdbc:postgresql://HOST[:PORT]/DB)"
DB_HOST=${BASH_REMATCH[1]}
DB_PORT=${BASH_REMATCH[3]:-5432}
DB_NAME=${LAB_DB_NAME:-${BASH_REMATCH[4]}}
case $DB_HOST in
  localhost | 127.0.0.1 | '[::1]') ;;
  *) say "LAB_DB_URL points to $DB_HOST: not a local server, nothing to do"; exit 0 ;;
esac

# Do not let the caller's libpq settings redirect the checks below.
unset PGHOST PGHOSTADDR PGPORT PGDATABASE PGUSER PGPASSWORD PGSERVICE PGPASSFILE PGOPTIONS

# psql as the app would connect: password over TCP to localhost.
can_login() { # DB
  PGPASSWORD=$DB_PASSWORD PGCONNECT_TIMEOUT=5 \
    psql -X -q -w -h localhost -p "$DB_PORT" -U "$DB_USER" -d "$1" -tAc 'select 1' >/dev/null 2>&1
}
ready_line() { say "ready: $DB_USER@localhost:$DB_PORT databases $DB_NAME, $TEST_DB"; }

# Fast path: the server is up and both databases accept the password.
if command -v psql >/dev/null 2>&1 && can_login "$DB_NAME" && can_login "$TEST_DB"; then
  ready_line
  exit 0
fi

[[ $(id -u) -eq 0 ]] || die "PostgreSQL is not ready for $DB_USER@localhost:$DB_PORT/$DB_NAME and $TEST_DB; run this script as root to set it up"

# --- 1. server binaries ------------------------------------------------------
newest_installed() {
  local d v best=
  for d in /usr/lib/postgresql/*/bin/postgres; do
    [[ -x $d ]] || continue
    v=${d#/usr/lib/postgresql/}; v=${v%%/*}
    if [[ -z $best || $v -gt $best ]]; then best=$v; fi
  done
  printf '%s' "$best"
}
PG_VERSION=${LAB_PG_VERSION:-$(newest_installed)}
if [[ -z $PG_VERSION || ! -x /usr/lib/postgresql/$PG_VERSION/bin/postgres ]] || ! command -v pg_ctlcluster >/dev/null 2>&1; then
  say "installing PostgreSQL (apt-get install postgresql)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null || die "apt-get update failed"
  apt-get install -y -q postgresql >/dev/null || die "apt-get install postgresql failed"
  PG_VERSION=${LAB_PG_VERSION:-$(newest_installed)}
  [[ -n $PG_VERSION && -x /usr/lib/postgresql/$PG_VERSION/bin/postgres ]] \
    || die "PostgreSQL server ${LAB_PG_VERSION:-} not found under /usr/lib/postgresql after install"
fi

# --- 2. cluster --------------------------------------------------------------
# pg_lsclusters -h: VERSION CLUSTER PORT STATUS OWNER DATADIR LOGFILE
cluster_field() { pg_lsclusters -h 2>/dev/null | awk -v v="$PG_VERSION" -v c="$CLUSTER" -v f="$1" '$1==v && $2==c {print $f}'; }
if [[ -z $(cluster_field 2) ]]; then
  say "creating cluster $PG_VERSION/$CLUSTER on port $DB_PORT"
  # UTF-8 whatever the caller's locale is (an unset LANG would give SQL_ASCII).
  pg_createcluster --locale C.UTF-8 --encoding UTF8 -p "$DB_PORT" "$PG_VERSION" "$CLUSTER" >/dev/null \
    || die "pg_createcluster $PG_VERSION $CLUSTER failed"
fi
cluster_port=$(cluster_field 3)
[[ $cluster_port == "$DB_PORT" ]] \
  || die "cluster $PG_VERSION/$CLUSTER listens on port $cluster_port but LAB_DB_URL says $DB_PORT"

if [[ $(cluster_field 4) != online* ]]; then
  say "starting cluster $PG_VERSION/$CLUSTER"
  pg_ctlcluster "$PG_VERSION" "$CLUSTER" start \
    || die "pg_ctlcluster $PG_VERSION $CLUSTER start failed; see $(cluster_field 7)"
fi

deadline=$((SECONDS + WAIT_S))
until pg_isready -q -h localhost -p "$DB_PORT"; do
  if ((SECONDS >= deadline)); then
    log=$(cluster_field 7)
    printf 'ensure-postgres: ERROR: server on localhost:%s not ready after %ss. Last lines of %s:\n' \
      "$DB_PORT" "$WAIT_S" "${log:-the server log}" >&2
    [[ -n $log && -r $log ]] && tail -n 15 "$log" >&2
    exit 1
  fi
  sleep 0.2
done

# --- 3. role and databases ---------------------------------------------------
lit() { local s=${1//\'/\'\'}; printf "'%s'" "$s"; }   # SQL string literal
ident() { local s=${1//\"/\"\"}; printf '"%s"' "$s"; } # SQL identifier
as_postgres() { # SQL on stdin, runs as the postgres superuser over the local socket
  (cd / && su postgres -s /bin/sh -c "psql -X -q -t -A -v ON_ERROR_STOP=1 -p $DB_PORT -d postgres")
}
query() { printf '%s\n' "$1" | as_postgres; }

if [[ -z $(query "select 1 from pg_roles where rolname = $(lit "$DB_USER")") ]]; then
  say "creating role $DB_USER"
  query "create role $(ident "$DB_USER") login password $(lit "$DB_PASSWORD")" >/dev/null
fi

for db in "$DB_NAME" "$TEST_DB"; do
  owner=$(query "select pg_get_userbyid(datdba) from pg_database where datname = $(lit "$db")")
  if [[ -z $owner ]]; then
    say "creating database $db"
    query "create database $(ident "$db") owner $(ident "$DB_USER") encoding 'UTF8' locale 'C.UTF-8' template template0" >/dev/null
  elif [[ $owner != "$DB_USER" ]]; then
    say "changing owner of database $db from $owner to $DB_USER"
    query "alter database $(ident "$db") owner to $(ident "$DB_USER")" >/dev/null
  fi
done

# --- 4. password login over TCP ----------------------------------------------
if ! can_login "$DB_NAME"; then
  # Wrong/missing password, NOLOGIN, or an md5 hash where pg_hba wants scram: set it anew.
  say "setting login and password of role $DB_USER"
  query "alter role $(ident "$DB_USER") login password $(lit "$DB_PASSWORD")" >/dev/null
fi
for db in "$DB_NAME" "$TEST_DB"; do
  if ! can_login "$db"; then
    err=$(PGPASSWORD=$DB_PASSWORD psql -X -w -h localhost -p "$DB_PORT" -U "$DB_USER" -d "$db" -c 'select 1' 2>&1 >/dev/null || true)
    die "password login $DB_USER@localhost:$DB_PORT/$db fails: ${err:-unknown error}. Check the host lines of /etc/postgresql/$PG_VERSION/$CLUSTER/pg_hba.conf (Debian's default: scram-sha-256 for 127.0.0.1/32 and ::1/128)."
  fi
done
ready_line
