#!/usr/bin/env bash
# PostgreSQL from the Debian packages, as a private cluster in $DATA_DIR/postgres
# (not the system's cluster). Sourced by lib.sh.
#
#   endpoint  postgresql://postgres@127.0.0.1:$PG_PORT/$PG_DB (trust auth, no password)
#   socket    $RUN_DIR/pg/.s.PGSQL.$PG_PORT
#
# wal_level=logical (and room for replication slots and WAL senders) so that
# audit-cdc can read logical replication; set both on the command line of a
# fresh start and with ALTER SYSTEM (kept in the data directory), so a server
# started by an older copy of these scripts is switched over once by `up`.

PG_DATA="$DATA_DIR/postgres"
PG_SOCK_DIR="$RUN_DIR/pg"
PG_LOG="$LOG_DIR/postgres.log"

postgres_endpoint() { echo "postgresql://postgres@127.0.0.1:$PG_PORT/$PG_DB"; }

# The server binaries: $AUDIT_PG_BINDIR, else the newest /usr/lib/postgresql/*/bin
# (Debian keeps initdb/pg_ctl off PATH), else whatever initdb is on PATH.
pg_bindir() {
  if [[ -n "${AUDIT_PG_BINDIR:-}" ]]; then echo "$AUDIT_PG_BINDIR"; return 0; fi
  local dir
  dir=$(find /usr/lib/postgresql -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)
  if [[ -n "$dir" && -x "$dir/initdb" ]]; then echo "$dir"; return 0; fi
  if command -v initdb >/dev/null; then dirname "$(command -v initdb)"; return 0; fi
  return 1
}

# initdb, pg_ctl and postgres refuse to run as root: as root, run them as the
# `postgres` system user (from `/`, so a cwd it cannot read causes no warnings).
as_pg() {
  if [[ $(id -u) -eq 0 ]]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

# ---- install ----

postgres_install() {
  if pg_bindir >/dev/null; then return 0; fi
  local started; started=$(now_ms)
  apt_install postgresql
  pg_bindir >/dev/null || die "postgres: installed, but no initdb found under /usr/lib/postgresql"
  log "postgres: installed in $(elapsed_since "$started")"
}

# Directories the server writes to must belong to the user it runs as.
postgres_prepare_dirs() {
  mkdir -p "$PG_DATA" "$PG_SOCK_DIR"
  touch "$PG_LOG"
  if [[ $(id -u) -eq 0 ]]; then
    if ! id postgres >/dev/null 2>&1; then
      log "postgres: creating the postgres system user"
      useradd --system --user-group --home-dir /var/lib/postgresql --shell /bin/bash postgres
    fi
    chown postgres: "$PG_DATA" "$PG_SOCK_DIR" "$PG_LOG"
    as_pg test -w "$PG_DATA" ||
      die "postgres: user 'postgres' cannot reach $PG_DATA (a parent directory is private?); set AUDIT_INFRA_HOME to a path it can read"
  fi
  chmod 700 "$PG_DATA"
}

# ---- health ----

postgres_health() {
  local bin
  bin=$(pg_bindir 2>/dev/null) || return 1
  "$bin/pg_isready" -q -t 3 -h 127.0.0.1 -p "$PG_PORT" 2>/dev/null
}

# Running = our data dir has a live postmaster (its pid is line 1 of postmaster.pid).
postgres_pid() {
  [[ -f "$PG_DATA/postmaster.pid" ]] || return 1
  local pid
  pid=$(head -n 1 "$PG_DATA/postmaster.pid" 2>/dev/null)
  pid_running "$pid" "$PG_DATA" || return 1
  echo "$pid"
}
postgres_running() { postgres_pid >/dev/null; }

postgres_describe() {
  local bin version=PostgreSQL
  if bin=$(pg_bindir 2>/dev/null); then version=$("$bin/postgres" --version | sed 's/^postgres (PostgreSQL) /PostgreSQL /'); fi
  if postgres_running; then echo "$version, user=postgres (trust), socket dir $PG_SOCK_DIR"; else echo "PostgreSQL (not started by these scripts)"; fi
}

PG_LOGICAL_SETTINGS=(wal_level=logical max_replication_slots=32 max_wal_senders=32)

pg_sql() { "$(pg_bindir)/psql" -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -tAc "$1"; }

# A server running with another wal_level (started before this setting existed)
# is restarted once, quickly ("fast": open sessions are disconnected; clients of
# the shared server reconnect). Idempotent: a no-op when already logical.
postgres_ensure_logical() {
  [[ "$(pg_sql "SHOW wal_level")" == logical ]] && return 0
  local kv
  for kv in "${PG_LOGICAL_SETTINGS[@]}"; do pg_sql "ALTER SYSTEM SET ${kv%%=*} = '${kv#*=}'" >/dev/null; done
  postgres_running || die "postgres: wal_level is not logical and this server was not started by these scripts; set wal_level=logical and restart it"
  log "postgres: restarting once to switch to wal_level=logical"
  # As in postgres_start: the new server must inherit none of our fds (a caller waiting on our output would wait for it).
  (
    close_inherited_fds
    as_pg "$(pg_bindir)/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -s -m fast -w -t "$START_TIMEOUT" restart </dev/null >/dev/null 2>>"$PG_LOG"
  ) || die "postgres: restart for wal_level=logical failed, see $PG_LOG"
  local deadline=$((SECONDS + START_TIMEOUT))
  until postgres_health; do
    ((SECONDS < deadline)) || die "postgres not healthy after restart, see $PG_LOG"
    sleep 0.2
  done
  [[ "$(pg_sql "SHOW wal_level")" == logical ]] || die "postgres: wal_level still not logical after restart"
}

# Creates the test database when missing (cheap: one query on every `up`).
postgres_ensure() {
  local bin
  bin=$(pg_bindir)
  postgres_ensure_logical
  if [[ "$("$bin/psql" -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'")" != 1 ]]; then
    "$bin/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres "$PG_DB" || die "postgres: could not create database $PG_DB"
    log "postgres: created database $PG_DB"
  fi
}

# ---- start / stop ----

postgres_start() {
  postgres_install
  local bin
  bin=$(pg_bindir)
  if ! postgres_running; then
    if port_open "$PG_PORT"; then die "postgres: port $PG_PORT is in use by a process these scripts did not start"; fi
    postgres_prepare_dirs
    if [[ ! -f "$PG_DATA/PG_VERSION" ]]; then
      log "postgres: initdb $PG_DATA"
      # C locale: does not depend on which locales the machine has generated.
      as_pg "$bin/initdb" -D "$PG_DATA" -U postgres --auth=trust -E UTF8 --no-locale \
        >"$LOG_DIR/postgres-initdb.log" 2>&1 || {
        show_log_tail "$LOG_DIR/postgres-initdb.log"
        die "postgres: initdb failed, see $LOG_DIR/postgres-initdb.log"
      }
    fi
    # pg_ctl daemonises postgres with stdin from /dev/null and output to the log.
    # Listen on 127.0.0.1 only; the socket goes to our run dir, not /var/run/postgresql.
    # (In a subshell without our fds, so the server inherits none of them.)
    (
      close_inherited_fds
      as_pg "$bin/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -s -w -t "$START_TIMEOUT" \
        -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -c unix_socket_directories=$PG_SOCK_DIR ${PG_LOGICAL_SETTINGS[*]/#/-c }" \
        start </dev/null >/dev/null 2>>"$PG_LOG"
    ) || {
      show_log_tail "$PG_LOG"
      die "postgres did not start, see $PG_LOG"
    }
  fi
  local deadline=$((SECONDS + START_TIMEOUT))
  until postgres_health; do
    ((SECONDS < deadline)) || die "postgres not healthy after ${START_TIMEOUT}s, see $PG_LOG"
    sleep 0.3
  done
}

postgres_stop() {
  local bin pid
  if pid=$(postgres_pid); then
    bin=$(pg_bindir)
    # "fast" = SIGINT: clients are disconnected and the server shuts down cleanly
    # (SIGTERM, "smart", would wait for every test connection to close). If that
    # hangs, "immediate" (SIGQUIT), then SIGKILL; the WAL makes both safe.
    as_pg "$bin/pg_ctl" -D "$PG_DATA" -s -m fast -w -t "$STOP_TIMEOUT" stop >/dev/null 2>&1 ||
      as_pg "$bin/pg_ctl" -D "$PG_DATA" -s -m immediate -w -t 10 stop >/dev/null 2>&1 ||
      { warn "postgres (pid $pid) did not stop; sending SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; }
  elif postgres_health; then
    warn "postgres: something answers on :$PG_PORT but was not started by these scripts; left alone"
  fi
}

postgres_wipe() { rm -rf "$PG_DATA"; }
