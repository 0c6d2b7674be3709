#!/usr/bin/env bash
# Shared helpers for infra/*.sh: paths, versions, ports, logging, locks, pid
# files, daemon start/stop and health polling. Sourced, never run directly.
#
# Everything installed, built or stored lives under $INFRA_HOME (git-ignored):
#   bin/               MinIO and versitygw binaries (go install GOBIN)
#   kafka/<version>/   Kafka jars (libs/) and generated config (config/)
#   data/<service>/    service data; survives down/up, wiped only by reset.sh
#   logs/              service logs, install/build logs
#   run/               pid files, locks, the PostgreSQL socket
set -euo pipefail

INFRA_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROJECT_ROOT="$(cd "$INFRA_DIR/.." && pwd)"
# Overridable so several clones (or CI caches) can share one install + data area.
INFRA_HOME="${AUDIT_INFRA_HOME:-$PROJECT_ROOT/.infra}"
LOG_DIR="$INFRA_HOME/logs"
RUN_DIR="$INFRA_HOME/run"
DATA_DIR="$INFRA_HOME/data"
BIN_DIR="$INFRA_HOME/bin"

ALL_SERVICES=(kafka s3 postgres s3b registry)

# ---- versions, ports and credentials (all overridable from the environment) ----
KAFKA_VERSION="${AUDIT_KAFKA_VERSION:-3.9.1}"
KAFKA_PORT="${AUDIT_KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${AUDIT_KAFKA_CONTROLLER_PORT:-9093}"
# MinIO publishes RELEASE.* tags that are not semver, so the Go module proxy only
# knows it by pseudo-versions; this one is what `@latest` resolved to (commit
# 7aac2a2c5b7c, 2026-02-12). Pinned so every machine builds the same server.
MINIO_VERSION="${AUDIT_MINIO_VERSION:-v0.0.0-20260212201848-7aac2a2c5b7c}"
S3_PORT="${AUDIT_S3_PORT:-9000}"
S3_CONSOLE_PORT="${AUDIT_S3_CONSOLE_PORT:-$((S3_PORT + 1))}"
S3_BUCKET="${AUDIT_S3_BUCKET:-audit}"
# The second S3 server (services/s3b.sh): versitygw, a semver release on the proxy.
VERSITYGW_VERSION="${AUDIT_VERSITYGW_VERSION:-v1.8.0}"
S3B_PORT="${AUDIT_S3B_PORT:-7070}"
S3_REGION="${AUDIT_S3_REGION:-us-east-1}"
S3_USER="${AWS_ACCESS_KEY_ID:-minioadmin}"
S3_PASSWORD="${AWS_SECRET_ACCESS_KEY:-minioadmin}"
PG_PORT="${AUDIT_PG_PORT:-54329}"
PG_DB="${AUDIT_PG_DB:-audit_test}"
REGISTRY_VERSION="${AUDIT_REGISTRY_VERSION:-3.3.3}"
REGISTRY_PORT="${AUDIT_REGISTRY_PORT:-8081}"
REGISTRY_MGMT_PORT="${AUDIT_REGISTRY_MGMT_PORT:-9091}"
# Seconds to wait for a service to become healthy / to exit after SIGTERM.
START_TIMEOUT="${AUDIT_INFRA_START_TIMEOUT:-180}"
STOP_TIMEOUT="${AUDIT_INFRA_STOP_TIMEOUT:-60}"

# Go is installed under /usr/local/go, which non-login shells often lack on PATH.
if ! command -v go >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then PATH="$PATH:/usr/local/go/bin"; fi

# ---- logging: progress goes to stderr so stdout carries only summary lines ----
log() { printf '[infra] %s\n' "$*" >&2; }
warn() { printf '[infra] warning: %s\n' "$*" >&2; }
die() { printf '[infra] error: %s\n' "$*" >&2; exit 1; }

# show_log_tail FILE: the end of a service log, to explain a failed start.
show_log_tail() {
  [[ -s "$1" ]] || return 0
  printf '[infra] --- last lines of %s ---\n' "$1" >&2
  tail -n 25 "$1" >&2 || true
}

ensure_dirs() { mkdir -p "$LOG_DIR" "$RUN_DIR" "$DATA_DIR" "$BIN_DIR"; }

now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }
# elapsed_since MS: human-readable time since a now_ms timestamp.
elapsed_since() {
  local ms=$(($(now_ms) - $1))
  printf '%d.%01ds' $((ms / 1000)) $((ms % 1000 / 100))
}

# ---- arguments ----
# parse_services ARGS...: sets SERVICES to the named services ("all" or nothing = all).
parse_services() {
  SERVICES=()
  local arg
  for arg in "$@"; do
    case "$arg" in
      all) SERVICES=("${ALL_SERVICES[@]}") ;;
      kafka | s3 | postgres | s3b) SERVICES+=("$arg") ;;
      minio) SERVICES+=(s3) ;;
      versitygw) SERVICES+=(s3b) ;;
      pg | postgresql) SERVICES+=(postgres) ;;
      registry | apicurio | schema-registry) SERVICES+=(registry) ;;
      *) die "unknown service '$arg' (expected: kafka, s3, postgres, s3b, registry or all)" ;;
    esac
  done
  if [[ ${#SERVICES[@]} -eq 0 ]]; then SERVICES=("${ALL_SERVICES[@]}"); fi
}

# ---- summary lines (stdout) ----
# summary SERVICE STATE ENDPOINT DETAIL
summary() {
  if [[ -n "${4:-}" ]]; then printf '%-9s %-8s %-52s %s\n' "$1" "$2" "$3" "$4"; else printf '%-9s %-8s %s\n' "$1" "$2" "$3"; fi
}

# ---- locks: one per service, so concurrent up/down calls (parallel test files)
# serialise instead of racing to start two servers. Uses fd 9; daemons are
# started without it (close_inherited_fds), so they never hold the lock. ----
lock_service() {
  exec 9>"$RUN_DIR/$1.lock"
  flock -w 600 9 || die "$1: could not get the lock $RUN_DIR/$1.lock within 600s"
}
unlock_service() { exec 9>&-; }

# ---- ports and processes ----
# port_open PORT: something accepts TCP connections on 127.0.0.1:PORT.
port_open() { timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null; }

# pid_running PID PATTERN: the process exists and its command line contains
# PATTERN (guards against a stale pid file whose pid was reused).
pid_running() {
  [[ -n "$1" && -r "/proc/$1/cmdline" ]] || return 1
  tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$2"
}

# pid_alive PID: the process exists and is not a zombie (a daemon that died while
# this shell, its parent, still runs stays a zombie until we exit).
pid_alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ "${stat%% *}" != Z ]]
}

# pidfile_pid PIDFILE PATTERN: prints the pid when the recorded process still runs.
pidfile_pid() {
  local pid
  [[ -f "$1" ]] || return 1
  pid=$(<"$1")
  pid_running "$pid" "$2" || return 1
  echo "$pid"
}

# close_inherited_fds: closes every fd above 2 in the current (sub)shell, so a
# daemon started from it holds none of the caller's pipes (a test runner waiting
# for its child's output to end) nor our lock (fd 9).
close_inherited_fds() {
  local fd
  for fd in $(ls "/proc/$BASHPID/fd"); do
    if ((fd > 2)); then eval "exec $fd>&-" 2>/dev/null || true; fi
  done
}

# spawn_daemon PIDFILE LOGFILE CMD...: starts CMD detached from this shell: its
# own session (a Ctrl-C or the test runner's process-group kill does not reach
# it), stdin from /dev/null, output appended to LOGFILE, no inherited fds.
spawn_daemon() {
  local pidfile=$1 logfile=$2
  shift 2
  printf '=== %s starting: %s\n' "$(date -Is)" "$*" >>"$logfile"
  # Without job control the background subshell is not a process-group leader, so
  # setsid(1) calls setsid() in place and execs: $! ends up as the daemon's own pid.
  (
    close_inherited_fds
    exec setsid "$@" </dev/null >>"$logfile" 2>&1
  ) &
  echo $! >"$pidfile"
}

# stop_pid NAME PID [TIMEOUT]: SIGTERM, wait for a clean exit, then SIGKILL.
stop_pid() {
  local name=$1 pid=$2 timeout=${3:-$STOP_TIMEOUT}
  kill -TERM "$pid" 2>/dev/null || return 0
  local deadline=$((SECONDS + timeout))
  # pid_alive, not kill -0: where PID 1 does not reap orphans, a stopped daemon
  # lingers as a zombie that kill -0 still reports.
  while pid_alive "$pid"; do
    if ((SECONDS >= deadline)); then
      warn "$name (pid $pid) still running ${timeout}s after SIGTERM; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
      break
    fi
    sleep 0.2
  done
}

# wait_healthy NAME TIMEOUT HEALTH_FN PIDFILE LOGFILE: polls HEALTH_FN until it
# succeeds; fails early (with the log tail) if the process exits.
wait_healthy() {
  local name=$1 timeout=$2 health=$3 pidfile=$4 logfile=$5
  local deadline=$((SECONDS + timeout)) pid
  pid=$(cat "$pidfile" 2>/dev/null) || true
  until "$health"; do
    # Right after spawn_daemon the pid may still be the subshell about to exec
    # (its command line not yet the daemon's), so only "gone" counts here.
    if [[ -z "$pid" ]] || ! pid_alive "$pid"; then
      show_log_tail "$logfile"
      die "$name exited during start-up (log: $logfile)"
    fi
    if ((SECONDS >= deadline)); then
      show_log_tail "$logfile"
      die "$name not healthy after ${timeout}s (log: $logfile)"
    fi
    sleep 0.3
  done
}

# ---- installing prerequisites ----
# apt_install PACKAGE...: Debian packages, only possible as root.
apt_install() {
  [[ $(id -u) -eq 0 ]] || die "missing packages: $*; install them with: sudo apt-get install -y $*"
  command -v apt-get >/dev/null || die "missing packages: $* (and no apt-get to install them)"
  log "installing Debian packages: $* (log: $LOG_DIR/apt.log)"
  { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"; } \
    >>"$LOG_DIR/apt.log" 2>&1 || die "apt-get install $* failed, see $LOG_DIR/apt.log"
}

# ---- the two S3 servers (services/s3.sh MinIO, services/s3b.sh versitygw) ----
# Both are Go binaries built with `go install` into $BIN_DIR, run as one daemon
# each, and started and stopped the same way. A service NAME (s3, s3b) brings
# its functions NAME_running, NAME_pid, NAME_health, NAME_install, NAME_launch
# and its variables ${NAME^^}_PORT, _DATA, _PIDFILE, _LOG.

# go_built_version BIN MODULE: the module version BIN was built from, read from its embedded build info.
go_built_version() { go version -m "$1" 2>/dev/null | awk -v m="$2" '$1 == "mod" && $2 == m {print $3}'; }

# go_binary_current BIN MODULE VERSION: BIN exists and was built from MODULE@VERSION;
# without a Go toolchain the version cannot be read, so an existing binary is trusted.
go_binary_current() {
  [[ -x "$1" ]] || return 1
  command -v go >/dev/null || return 0
  [[ "$(go_built_version "$1" "$2")" == "$3" ]]
}

# go_build_binary NAME PRODUCT GO_MIN BIN MODULE PACKAGE VERSION BUILD_LOG FIRST_TIME:
# builds PACKAGE@VERSION into $BIN_DIR (BIN), saying how long the first build takes.
go_build_binary() {
  local name=$1 product=$2 go_min=$3 bin=$4 module=$5 package=$6 version=$7 build_log=$8 first_time=$9
  command -v go >/dev/null ||
    die "$name: Go is required to build $product (it needs go >= $go_min; expected at /usr/local/go/bin/go)"
  local started; started=$(now_ms)
  log "$name: building $module@$version with go install (first time: $first_time; log: $build_log)"
  # GOBIN only: the module and build caches stay in their usual per-user places
  # (~/go/pkg/mod, ~/.cache/go-build), so later builds and other clones reuse them.
  # go install writes the binary with a rename, so a running server is not disturbed.
  if ! GOBIN="$BIN_DIR" go install "$package@$version" >"$build_log" 2>&1; then
    show_log_tail "$build_log"
    die "$name: building $product failed, see $build_log"
  fi
  log "$name: built $product $(go_built_version "$bin" "$module") in $(elapsed_since "$started")"
}

# go_server_start NAME: starts the server unless it runs, then waits until it is healthy.
go_server_start() {
  local name=$1 prefix=${1^^}
  local port_var=${prefix}_PORT data_var=${prefix}_DATA pidfile_var=${prefix}_PIDFILE log_var=${prefix}_LOG
  if ! "${name}_running"; then
    if port_open "${!port_var}"; then die "$name: port ${!port_var} is in use by a process these scripts did not start"; fi
    "${name}_install"
    mkdir -p "${!data_var}"
    "${name}_launch"
  fi
  wait_healthy "$name" "$START_TIMEOUT" "${name}_health" "${!pidfile_var}" "${!log_var}"
}

# go_server_stop NAME: stops the server these scripts started; one they did not start is left alone.
go_server_stop() {
  local name=$1 prefix=${1^^} pid
  local port_var=${prefix}_PORT pidfile_var=${prefix}_PIDFILE
  if pid=$("${name}_pid"); then
    stop_pid "$name" "$pid" 30
  elif "${name}_health"; then
    warn "$name: something answers on :${!port_var} but was not started by these scripts; left alone"
  fi
  rm -f "${!pidfile_var}"
}

ensure_dirs
# shellcheck source=services/kafka.sh
source "$INFRA_DIR/services/kafka.sh"
# shellcheck source=services/s3.sh
source "$INFRA_DIR/services/s3.sh"
# shellcheck source=services/postgres.sh
source "$INFRA_DIR/services/postgres.sh"
# shellcheck source=services/s3b.sh
source "$INFRA_DIR/services/s3b.sh"
# shellcheck source=services/registry.sh
source "$INFRA_DIR/services/registry.sh"
