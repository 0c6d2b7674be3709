#!/usr/bin/env bash
# MinIO, a real S3-compatible server, built from source with `go install` (MinIO's
# binary downloads are not reachable here; the Go module proxy is). Sourced by lib.sh.
#
#   endpoint     http://127.0.0.1:$S3_PORT (9000), region us-east-1, path-style
#   credentials  $AWS_ACCESS_KEY_ID / $AWS_SECRET_ACCESS_KEY (minioadmin/minioadmin)
#   bucket       $AUDIT_S3_BUCKET (audit), created on every `up` if missing

MINIO_MODULE=github.com/minio/minio
MINIO_BIN="$BIN_DIR/minio"
S3_DATA="$DATA_DIR/s3"
S3_PIDFILE="$RUN_DIR/s3.pid"
S3_LOG="$LOG_DIR/s3.log"
S3_PATTERN="$MINIO_BIN server"

s3_endpoint() { echo "http://127.0.0.1:$S3_PORT"; }

# ---- install ----

s3_installed() {
  [[ -x "$MINIO_BIN" ]] || return 1
  # `latest` accepts any build.
  [[ "$MINIO_VERSION" == latest ]] && return 0
  go_binary_current "$MINIO_BIN" "$MINIO_MODULE" "$MINIO_VERSION"
}

s3_install() {
  if s3_installed; then return 0; fi
  go_build_binary s3 MinIO 1.24 "$MINIO_BIN" "$MINIO_MODULE" "$MINIO_MODULE" "$MINIO_VERSION" "$LOG_DIR/minio-build.log" "several minutes"
}

# ---- health ----

s3_health() { curl -fsS -o /dev/null --max-time 3 "http://127.0.0.1:$S3_PORT/minio/health/live" 2>/dev/null; }

s3_pid() { pidfile_pid "$S3_PIDFILE" "$S3_PATTERN"; }
s3_running() { s3_pid >/dev/null; }

# v0.0.0-20260212201848-7aac2a2c5b7c -> "2026-02-12 (commit 7aac2a2c5b7c)"
s3_version_label() {
  if [[ "$MINIO_VERSION" =~ ^v0\.0\.0-([0-9]{4})([0-9]{2})([0-9]{2})[0-9]{6}-([0-9a-f]{12})$ ]]; then
    echo "${BASH_REMATCH[1]}-${BASH_REMATCH[2]}-${BASH_REMATCH[3]} (commit ${BASH_REMATCH[4]})"
  else
    echo "$MINIO_VERSION"
  fi
}

s3_describe() {
  if s3_running; then
    echo "MinIO $(s3_version_label), bucket=$S3_BUCKET, user=$S3_USER"
  else
    echo "S3 server (not started by these scripts), bucket=$S3_BUCKET"
  fi
}

# s3_request_at PORT METHOD PATH: a SigV4-signed request to the S3 server on PORT
# (curl signs it itself); prints the HTTP status. Shared with s3b.sh.
s3_request_at() {
  curl -sS -o /dev/null -w '%{http_code}' --max-time 10 -X "$2" \
    --aws-sigv4 "aws:amz:$S3_REGION:s3" --user "$S3_USER:$S3_PASSWORD" \
    -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' \
    "http://127.0.0.1:$1/$3" 2>/dev/null || true
}

# s3_ensure_bucket NAME PORT: creates the bucket on the server on PORT when
# missing; cheap enough (one HEAD) to run on every `up`.
s3_ensure_bucket() {
  local name=$1 port=$2 code
  code=$(s3_request_at "$port" HEAD "$S3_BUCKET")
  case "$code" in
    200) return 0 ;;
    404) ;;
    403) die "$name: access denied for '$S3_USER' (the server was started with other credentials? infra/reset.sh $name starts over)" ;;
    *) die "$name: HEAD /$S3_BUCKET answered HTTP $code" ;;
  esac
  code=$(s3_request_at "$port" PUT "$S3_BUCKET")
  case "$code" in
    200 | 409) log "$name: created bucket $S3_BUCKET" ;; # 409: created concurrently
    *) die "$name: creating bucket $S3_BUCKET answered HTTP $code" ;;
  esac
}

s3_ensure() { s3_ensure_bucket s3 "$S3_PORT"; }

# ---- start / stop ----

s3_launch() {
  # Console (web UI) off: fewer ports, faster start. Update checks and call-home
  # off: there is no network to reach anyway.
  MINIO_ROOT_USER="$S3_USER" MINIO_ROOT_PASSWORD="$S3_PASSWORD" \
    MINIO_BROWSER=off MINIO_UPDATE=off MINIO_CALLHOME_ENABLE=off \
    spawn_daemon "$S3_PIDFILE" "$S3_LOG" \
    "$MINIO_BIN" server --address "127.0.0.1:$S3_PORT" --console-address "127.0.0.1:$S3_CONSOLE_PORT" "$S3_DATA"
}

s3_start() { go_server_start s3; }
s3_stop() { go_server_stop s3; }

s3_wipe() { rm -rf "$S3_DATA"; }
