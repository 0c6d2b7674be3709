#!/usr/bin/env bash
# versitygw, a second S3 server (Apache-2.0, maintained; MinIO's repository is
# archived and AGPL), with its posix backend: buckets are directories, objects
# files. Built with `go install` from the Go module proxy, like MinIO. The
# storage and exactly-once tests run against both servers. Sourced by lib.sh.
#
#   endpoint     http://127.0.0.1:$S3B_PORT (7070), region us-east-1, path-style
#   credentials  the same as MinIO's ($AWS_ACCESS_KEY_ID / $AWS_SECRET_ACCESS_KEY)
#   bucket       $AUDIT_S3_BUCKET (audit), created on every `up` if missing
#   health       GET /health (versitygw --health)

VERSITYGW_MODULE=github.com/versity/versitygw
VERSITYGW_BIN="$BIN_DIR/versitygw"
S3B_DATA="$DATA_DIR/s3b"
S3B_PIDFILE="$RUN_DIR/s3b.pid"
S3B_LOG="$LOG_DIR/s3b.log"
S3B_PATTERN="$VERSITYGW_BIN --port"

s3b_endpoint() { echo "http://127.0.0.1:$S3B_PORT"; }

# ---- install ----

s3b_built_version() { go version -m "$VERSITYGW_BIN" 2>/dev/null | awk -v m="$VERSITYGW_MODULE" '$1 == "mod" && $2 == m {print $3}'; }

s3b_installed() {
  [[ -x "$VERSITYGW_BIN" ]] || return 1
  command -v go >/dev/null || return 0
  [[ "$(s3b_built_version)" == "$VERSITYGW_VERSION" ]]
}

s3b_install() {
  if s3b_installed; then return 0; fi
  command -v go >/dev/null ||
    die "s3b: Go is required to build versitygw (it needs go >= 1.25; expected at /usr/local/go/bin/go)"
  local started; started=$(now_ms)
  log "s3b: building $VERSITYGW_MODULE@$VERSITYGW_VERSION with go install (first time: about 4 minutes; log: $LOG_DIR/versitygw-build.log)"
  # Same caches as the MinIO build (see s3.sh); go install renames the binary into place.
  if ! GOBIN="$BIN_DIR" go install "$VERSITYGW_MODULE/cmd/versitygw@$VERSITYGW_VERSION" >"$LOG_DIR/versitygw-build.log" 2>&1; then
    show_log_tail "$LOG_DIR/versitygw-build.log"
    die "s3b: building versitygw failed, see $LOG_DIR/versitygw-build.log"
  fi
  log "s3b: built versitygw $(s3b_built_version) in $(elapsed_since "$started")"
}

# ---- health ----

s3b_health() { curl -fsS -o /dev/null --max-time 3 "http://127.0.0.1:$S3B_PORT/health" 2>/dev/null; }

s3b_pid() { pidfile_pid "$S3B_PIDFILE" "$S3B_PATTERN"; }
s3b_running() { s3b_pid >/dev/null; }

s3b_describe() {
  if s3b_running; then
    echo "versitygw $VERSITYGW_VERSION (posix), bucket=$S3_BUCKET, user=$S3_USER"
  else
    echo "S3 server (not started by these scripts), bucket=$S3_BUCKET"
  fi
}

s3b_ensure() { s3_ensure_bucket s3b "$S3B_PORT"; }

# ---- start / stop ----

s3b_start() {
  if ! s3b_running; then
    if port_open "$S3B_PORT"; then die "s3b: port $S3B_PORT is in use by a process these scripts did not start"; fi
    s3b_install
    mkdir -p "$S3B_DATA"
    # --quiet: no line per request in the log. The posix backend keeps object
    # metadata in extended attributes (ext4, xfs, btrfs have them).
    ROOT_ACCESS_KEY_ID="$S3_USER" ROOT_SECRET_ACCESS_KEY="$S3_PASSWORD" \
      spawn_daemon "$S3B_PIDFILE" "$S3B_LOG" \
      "$VERSITYGW_BIN" --port "127.0.0.1:$S3B_PORT" --region "$S3_REGION" --health /health --quiet posix "$S3B_DATA"
  fi
  wait_healthy s3b "$START_TIMEOUT" s3b_health "$S3B_PIDFILE" "$S3B_LOG"
}

s3b_stop() {
  local pid
  if pid=$(s3b_pid); then
    stop_pid s3b "$pid" 30
  elif s3b_health; then
    warn "s3b: something answers on :$S3B_PORT but was not started by these scripts; left alone"
  fi
  rm -f "$S3B_PIDFILE"
}

s3b_wipe() { rm -rf "$S3B_DATA"; }
