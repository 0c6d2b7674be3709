#!/usr/bin/env bash
# MinIO, an S3-compatible server, built from source with `go install`.

MINIO_BIN="$BIN/minio"
S3_DATA="$DATA/s3"
S3_PID="$RUN/s3.pid"

s3_install() {
  if [[ -x "$MINIO_BIN" ]]; then return 0; fi
  command -v go >/dev/null || die "go is required to build MinIO (https://go.dev/doc/install or apt-get install -y golang)"
  log "s3: building github.com/minio/minio@$MINIO_VERSION with go install (first time: several minutes)"
  GOBIN="$BIN" GOFLAGS=-mod=mod go install "github.com/minio/minio@$MINIO_VERSION" >"$LOGS/minio-build.log" 2>&1 ||
    die "s3: building MinIO failed, see $LOGS/minio-build.log"
}

s3_live() { curl -fs -o /dev/null --max-time 2 "http://127.0.0.1:$S3_PORT/minio/health/live"; }

s3_health() { pid_alive "$S3_PID" && s3_live; }

# Creates the bucket if missing (SigV4-signed by curl; 409 = already there).
s3_bucket() {
  local code
  code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 --aws-sigv4 "aws:amz:us-east-1:s3" \
    --user "$S3_USER:$S3_PASSWORD" -X PUT "http://127.0.0.1:$S3_PORT/$S3_BUCKET")
  case "$code" in
    200 | 409) ;;
    *) die "s3: creating bucket $S3_BUCKET answered HTTP $code" ;;
  esac
}

s3_start() {
  if s3_health; then return 0; fi
  if port_open "$S3_PORT"; then die "port $S3_PORT is taken by another process"; fi
  s3_install
  mkdir -p "$S3_DATA"
  MINIO_ROOT_USER="$S3_USER" MINIO_ROOT_PASSWORD="$S3_PASSWORD" MINIO_BROWSER=off \
    MINIO_UPDATE=off MINIO_CALLHOME_ENABLE=off \
    nohup "$MINIO_BIN" server "$S3_DATA" --address "127.0.0.1:$S3_PORT" --console-address "127.0.0.1:$((S3_PORT + 1))" \
    >"$LOGS/s3.log" 2>&1 &
  echo $! >"$S3_PID"
  wait_until 60 "s3 on :$S3_PORT" s3_health || die "s3 did not start, see $LOGS/s3.log"
  s3_bucket
}

s3_stop() { stop_pidfile s3 "$S3_PID"; }

s3_reset() { s3_stop; rm -rf "$S3_DATA"; log "s3 data wiped"; }

s3_describe() { echo "s3        http://127.0.0.1:$S3_PORT bucket=$S3_BUCKET ($("$MINIO_BIN" --version 2>/dev/null | head -n 1))"; }
