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

s3b_installed() { go_binary_current "$VERSITYGW_BIN" "$VERSITYGW_MODULE" "$VERSITYGW_VERSION"; }

s3b_install() {
  if s3b_installed; then return 0; fi
  go_build_binary s3b versitygw 1.25 "$VERSITYGW_BIN" "$VERSITYGW_MODULE" "$VERSITYGW_MODULE/cmd/versitygw" "$VERSITYGW_VERSION" \
    "$LOG_DIR/versitygw-build.log" "about 4 minutes"
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

s3b_launch() {
  # --quiet: no line per request in the log. The posix backend keeps object
  # metadata in extended attributes (ext4, xfs, btrfs have them).
  ROOT_ACCESS_KEY_ID="$S3_USER" ROOT_SECRET_ACCESS_KEY="$S3_PASSWORD" \
    spawn_daemon "$S3B_PIDFILE" "$S3B_LOG" \
    "$VERSITYGW_BIN" --port "127.0.0.1:$S3B_PORT" --region "$S3_REGION" --health /health --quiet posix "$S3B_DATA"
}

s3b_start() { go_server_start s3b; }
s3b_stop() { go_server_stop s3b; }

s3b_wipe() { rm -rf "$S3B_DATA"; }
