#!/usr/bin/env bash
# Usage: infra/down.sh [kafka|s3|postgres|s3b|registry|all]...   (default: all)
# Stops services started by infra/up.sh: SIGTERM (PostgreSQL: pg_ctl fast
# shutdown), a wait for a clean exit, then SIGKILL. Data is kept, so a later
# `up` resumes where it stopped. Stopping a stopped service is a no-op.
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
parse_services "$@"

for svc in "${SERVICES[@]}"; do
  lock_service "$svc"
  if "${svc}_running"; then
    started=$(now_ms)
    "${svc}_stop"
    summary "$svc" down "$("${svc}_endpoint")" "stopped in $(elapsed_since "$started")"
  else
    "${svc}_stop" # clears stale pid files; warns if a foreign server answers
    summary "$svc" down "$("${svc}_endpoint")" "was not running"
  fi
  unlock_service
done
