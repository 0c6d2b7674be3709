#!/usr/bin/env bash
# Shared helpers for the local infrastructure scripts: paths, versions, process
# handling and health checks. Sourced, never run directly.
set -euo pipefail

INFRA_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$INFRA_DIR/.." && pwd)"
# Everything downloaded, built or stored lives here (git-ignored); point several
# clones at one place with AUDIT_INFRA_HOME to share the cache.
INFRA_HOME="${AUDIT_INFRA_HOME:-$ROOT/.infra}"
LOGS="$INFRA_HOME/logs"
RUN="$INFRA_HOME/run"
DATA="$INFRA_HOME/data"
BIN="$INFRA_HOME/bin"
mkdir -p "$LOGS" "$RUN" "$DATA" "$BIN"

KAFKA_VERSION="${AUDIT_KAFKA_VERSION:-3.9.1}"
KAFKA_PORT="${AUDIT_KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${AUDIT_KAFKA_CONTROLLER_PORT:-9093}"
# Pinned so every machine builds the same server (the module proxy serves it as a pseudo-version).
MINIO_VERSION="${AUDIT_MINIO_VERSION:-v0.0.0-20260212201848-7aac2a2c5b7c}"
S3_PORT="${AUDIT_S3_PORT:-9000}"
S3_BUCKET="${AUDIT_S3_BUCKET:-audit}"
S3_USER="${AWS_ACCESS_KEY_ID:-minioadmin}"
S3_PASSWORD="${AWS_SECRET_ACCESS_KEY:-minioadmin}"
PG_PORT="${AUDIT_PG_PORT:-54329}"
PG_DB="${AUDIT_PG_DB:-audit_test}"

log() { printf '[infra] %s\n' "$*" >&2; }
die() { printf '[infra] error: %s\n' "$*" >&2; exit 1; }

# port_open PORT: true when something accepts TCP connections on 127.0.0.1:PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_until SECONDS DESCRIPTION COMMAND...: polls COMMAND every 0.5 s.
wait_until() {
  local timeout=$1 what=$2; shift 2
  local deadline=$((SECONDS + timeout))
  until "$@"; do
    if ((SECONDS >= deadline)); then log "timed out after ${timeout}s waiting for $what"; return 1; fi
    sleep 0.5
  done
}

pid_alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

# stop_pidfile NAME PIDFILE: SIGTERM, wait up to 30 s, then SIGKILL.
stop_pidfile() {
  local name=$1 pidfile=$2
  if ! pid_alive "$pidfile"; then rm -f "$pidfile"; return 0; fi
  local pid; pid=$(cat "$pidfile")
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + 30))
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS >= deadline)); then log "$name did not stop in 30s; killing"; kill -KILL "$pid" 2>/dev/null || true; break; fi
    sleep 0.2
  done
  rm -f "$pidfile"
  log "$name stopped"
}

# The services to act on: a list of names, or "all".
services_from_args() {
  if [[ $# -eq 0 || "$1" == all ]]; then echo "kafka s3 postgres"; else echo "$@"; fi
}

for svc in kafka s3 postgres; do
  # shellcheck source=/dev/null
  source "$INFRA_DIR/services/$svc.sh"
done

dispatch() {
  local action=$1; shift
  local svc
  for svc in $(services_from_args "$@"); do
    case "$svc" in
      kafka | s3 | postgres) "${svc}_${action}" ;;
      *) die "unknown service '$svc' (expected kafka, s3, postgres or all)" ;;
    esac
  done
}
