#!/usr/bin/env bash
# PostgreSQL from Debian packages, as a private cluster owned by the `postgres` user.

PG_DATA="$DATA/postgres"
PG_SOCK="$RUN/pg"

pg_bindir() {
  local dir
  for dir in /usr/lib/postgresql/*/bin; do [[ -x "$dir/initdb" ]] && { echo "$dir"; return 0; }; done
  command -v initdb >/dev/null && { dirname "$(command -v initdb)"; return 0; }
  return 1
}

# Runs a command as the postgres user when we are root (initdb and postgres refuse root).
as_pg() {
  if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

postgres_install() {
  if pg_bindir >/dev/null; then return 0; fi
  log "postgres: installing Debian packages"
  if [[ $(id -u) -eq 0 ]]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) >"$LOGS/postgres-install.log" 2>&1 ||
      die "postgres: apt-get install failed, see $LOGS/postgres-install.log"
  else
    die "postgres: not installed; run: sudo apt-get install -y postgresql"
  fi
}

postgres_health() { "$(pg_bindir)/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" 2>/dev/null; }

postgres_start() {
  if postgres_health 2>/dev/null; then return 0; fi
  postgres_install
  local bin; bin=$(pg_bindir)
  if [[ $(id -u) -eq 0 ]] && ! id postgres >/dev/null 2>&1; then useradd --system --home-dir "$PG_DATA" postgres; fi
  mkdir -p "$PG_DATA" "$PG_SOCK"
  [[ $(id -u) -eq 0 ]] && chown postgres "$PG_DATA" "$PG_SOCK" && chmod 700 "$PG_DATA"
  if [[ ! -f "$PG_DATA/PG_VERSION" ]]; then
    as_pg "$bin/initdb" -D "$PG_DATA" -U postgres --auth=trust -E UTF8 >"$LOGS/postgres-initdb.log" 2>&1 ||
      die "postgres: initdb failed, see $LOGS/postgres-initdb.log"
  fi
  touch "$LOGS/postgres.log" && { [[ $(id -u) -ne 0 ]] || chown postgres "$LOGS/postgres.log"; }
  as_pg "$bin/pg_ctl" -D "$PG_DATA" -l "$LOGS/postgres.log" -w -t 60 \
    -o "-h 127.0.0.1 -p $PG_PORT -k $PG_SOCK -c fsync=on" start >/dev/null ||
    die "postgres did not start, see $LOGS/postgres.log"
  if ! "$bin/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$PG_DB'" | grep -q 1; then
    "$bin/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres "$PG_DB"
  fi
}

postgres_stop() {
  local bin
  bin=$(pg_bindir 2>/dev/null) || return 0
  if [[ -f "$PG_DATA/postmaster.pid" ]]; then
    as_pg "$bin/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null 2>&1 || true
    log "postgres stopped"
  fi
}

postgres_reset() { postgres_stop; rm -rf "$PG_DATA"; log "postgres data wiped"; }

postgres_describe() { echo "postgres  postgresql://postgres@127.0.0.1:$PG_PORT/$PG_DB ($("$(pg_bindir)/postgres" --version))"; }
