#!/usr/bin/env bash
# Object Lock and least-privilege users on the local MinIO (service s3), with
# MinIO's own admin client `mc` (built once with `go install`, like MinIO itself;
# never a hand-signed admin API call). Every subcommand is idempotent.
#
#   infra/s3-admin.sh lock-bucket [BUCKET]   versioned bucket with Object Lock and a default retention
#       AUDIT_S3_LOCK_BUCKET (audit-locked)  AUDIT_S3_LOCK_MODE (GOVERNANCE|COMPLIANCE)  AUDIT_S3_LOCK_DAYS (1)
#   infra/s3-admin.sh users [--bucket B] [--prefix P] [--suffix S]
#       users audit-consumer$S, audit-maintainer$S, audit-auditor$S with the policies of
#       infra/iam/*-policy.json rewritten for s3://B/P (default s3://audit/events);
#       prints one line per user on stdout: ROLE ACCESS_KEY SECRET_KEY
#   infra/s3-admin.sh remove-users [--suffix S]   removes those users and their policies (tests clean up)
#   infra/s3-admin.sh mc ARGS...             runs mc with the alias `local` (the root user)
#   infra/s3-admin.sh mc-path                installs mc if needed, prints its path
#
# COMPLIANCE mode cannot be undone, not even by the root user: a COMPLIANCE bucket's
# objects stay until their retention ends. Use it on disposable data only.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MC_MODULE=github.com/minio/mc
# mc publishes RELEASE.* tags, not semver: the proxy knows it by pseudo-versions only.
# This is what `@latest` resolved to (2025-03-13); pinned so every machine builds the same.
MC_VERSION="${AUDIT_MC_VERSION:-v0.0.0-20250313080218-cf909e1063a9}"
MC_BIN="$BIN_DIR/mc"
# mc keeps aliases and its session files here, not in ~/.mc.
export MC_CONFIG_DIR="$INFRA_HOME/mc"
# The alias `local` without any config file: mc reads MC_HOST_<alias>.
export MC_HOST_local="http://$S3_USER:$S3_PASSWORD@127.0.0.1:$S3_PORT"

mc_built_version() { go version -m "$MC_BIN" 2>/dev/null | awk -v m="$MC_MODULE" '$1 == "mod" && $2 == m {print $3}'; }

mc_install() {
  if [[ -x "$MC_BIN" ]] && { ! command -v go >/dev/null || [[ "$MC_VERSION" == latest || "$(mc_built_version)" == "$MC_VERSION" ]]; }; then
    return 0
  fi
  command -v go >/dev/null || die "mc: Go is required to build mc (expected at /usr/local/go/bin/go)"
  exec 8>"$RUN_DIR/mc-install.lock"
  flock -w 600 8 || die "mc: could not get $RUN_DIR/mc-install.lock"
  if [[ ! -x "$MC_BIN" || ("$MC_VERSION" != latest && "$(mc_built_version)" != "$MC_VERSION") ]]; then
    local started; started=$(now_ms)
    log "mc: building $MC_MODULE@$MC_VERSION with go install (first time ~1-3 min; log: $LOG_DIR/mc-build.log)"
    GOBIN="$BIN_DIR" go install "$MC_MODULE@$MC_VERSION" >"$LOG_DIR/mc-build.log" 2>&1 || {
      show_log_tail "$LOG_DIR/mc-build.log"
      die "mc: build failed, see $LOG_DIR/mc-build.log"
    }
    log "mc: built in $(elapsed_since "$started")"
  fi
  exec 8>&-
}

mc() {
  mc_install
  mkdir -p "$MC_CONFIG_DIR"
  "$MC_BIN" --no-color --disable-pager "$@"
}

require_s3() { s3_health || die "s3 (MinIO on :$S3_PORT) is not running: infra/up.sh s3"; }

# ---- lock-bucket ----

lock_bucket() {
  local bucket=${1:-${AUDIT_S3_LOCK_BUCKET:-audit-locked}}
  local mode=${AUDIT_S3_LOCK_MODE:-GOVERNANCE} days=${AUDIT_S3_LOCK_DAYS:-1}
  mode=${mode^^}
  [[ "$mode" == GOVERNANCE || "$mode" == COMPLIANCE ]] || die "AUDIT_S3_LOCK_MODE: expected GOVERNANCE or COMPLIANCE, got '$mode'"
  [[ "$days" =~ ^[1-9][0-9]*$ ]] || die "AUDIT_S3_LOCK_DAYS: expected a whole number of days >= 1, got '$days'"
  require_s3
  local info
  if info=$(mc retention info --default "local/$bucket" --json 2>/dev/null); then
    : # exists with Object Lock
  elif mc stat "local/$bucket" >/dev/null 2>&1; then
    # MinIO cannot turn Object Lock on for an existing bucket.
    die "bucket $bucket exists without Object Lock; pick another name (Object Lock is set when a bucket is created)"
  else
    mc mb --ignore-existing --with-lock "local/$bucket" >/dev/null
    log "s3: created bucket $bucket with versioning and Object Lock"
    info=$(mc retention info --default "local/$bucket" --json 2>/dev/null || true)
  fi
  # Already the wanted default: nothing to change (COMPLIANCE defaults are only ever replaced on request).
  if [[ "$info" == *"\"mode\":\"$mode\""* && "$info" == *"\"validity\":\"${days}DAYS\""* ]]; then
    :
  else
    mc retention set --default "$mode" "${days}d" "local/$bucket" >/dev/null
    log "s3: default retention of $bucket set to $mode ${days}d"
  fi
  local versioning
  versioning=$(mc version info "local/$bucket" --json)
  [[ "$versioning" == *'"status":"Enabled"'* ]] || die "bucket $bucket: versioning is not enabled ($versioning)"
  summary "$bucket" locked "s3://$bucket" "versioning on, default retention $mode ${days}d"
}

# ---- users ----

ROLES=(consumer maintainer auditor)

# The secret of a local user: derived from the root credentials and the user name,
# so a second run yields the same keys (idempotent) without storing them anywhere.
user_secret() { printf '%s\n%s\n%s' "$S3_USER" "$S3_PASSWORD" "$1" | sha256sum | cut -c1-40; }

# render_policy ROLE BUCKET PREFIX: infra/iam/ROLE-policy.json, written for
# s3://audit/events, rewritten for s3://BUCKET/PREFIX.
render_policy() {
  local role=$1 bucket=$2 prefix=$3
  [[ "$bucket$prefix" != *'#'* && "$bucket$prefix" != *'"'* ]] || die "bucket and prefix must not contain '#' or '\"'"
  sed -e "s#arn:aws:s3:::audit/events/#arn:aws:s3:::$bucket/$prefix/#g" \
    -e "s#arn:aws:s3:::audit\"#arn:aws:s3:::$bucket\"#g" \
    -e "s#\"events/\\*\"#\"$prefix/*\"#g" \
    -e "s#\"events/\"#\"$prefix/\"#g" \
    "$INFRA_DIR/iam/$role-policy.json"
}

users() {
  local bucket=$S3_BUCKET prefix=events suffix=""
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --bucket) bucket=$2; shift 2 ;;
      --prefix) prefix=${2%/}; shift 2 ;;
      --suffix) suffix=$2; shift 2 ;;
      *) die "users: unknown argument '$1' (expected --bucket B, --prefix P, --suffix S)" ;;
    esac
  done
  [[ -n "$prefix" ]] || die "users: --prefix must not be empty"
  require_s3
  local role user secret policy_file
  policy_file=$(mktemp)
  trap 'rm -f "$policy_file"' RETURN
  for role in "${ROLES[@]}"; do
    user="audit-$role$suffix"
    secret=$(user_secret "$user")
    render_policy "$role" "$bucket" "$prefix" >"$policy_file"
    # Each of these replaces what is there: re-running converges on the same state.
    mc admin policy create local "$user" "$policy_file" >/dev/null
    mc admin user add local "$user" "$secret" >/dev/null
    mc admin policy attach local "$user" --user "$user" >/dev/null 2>&1 ||
      mc admin user info local "$user" --json | grep -q "\"policyName\":\"$user\"" ||
      die "users: could not attach policy $user to user $user"
    printf '%s %s %s\n' "$role" "$user" "$secret"
  done
  log "s3: users audit-{consumer,maintainer,auditor}$suffix with policies for s3://$bucket/$prefix"
}

remove_users() {
  local suffix=""
  case "${1:-}" in
    --suffix) suffix=${2:-} ;;
    "") ;;
    *) die "remove-users: unknown argument '$1' (expected --suffix S)" ;;
  esac
  require_s3
  local role user
  for role in "${ROLES[@]}"; do
    user="audit-$role$suffix"
    # Gone already is fine: removing is idempotent too.
    mc admin user rm local "$user" >/dev/null 2>&1 || true
    mc admin policy rm local "$user" >/dev/null 2>&1 || true
  done
  log "s3: removed users audit-{consumer,maintainer,auditor}$suffix"
}

cmd=${1:-}
[[ $# -gt 0 ]] && shift
case "$cmd" in
  lock-bucket) lock_bucket "$@" ;;
  users) users "$@" ;;
  remove-users) remove_users "$@" ;;
  mc) mc "$@" ;;
  mc-path) mc_install; echo "$MC_BIN" ;;
  *) die "usage: infra/s3-admin.sh lock-bucket [BUCKET] | users [--bucket B] [--prefix P] [--suffix S] | remove-users [--suffix S] | mc ARGS... | mc-path" ;;
esac
