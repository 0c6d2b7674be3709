#!/usr/bin/env bash
# Usage: infra/up.sh [kafka|s3|postgres|s3b|registry|all]...   (default: all)
# Installs what is missing (cached under .infra/), starts each service unless it
# is already healthy, waits until it is, and makes sure the S3 bucket and the
# PostgreSQL database exist. Prints one summary line per service on stdout;
# progress only appears (on stderr) when something had to be done, so a second
# `up` is quiet and returns in well under a second.
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
parse_services "$@"

for svc in "${SERVICES[@]}"; do
  lock_service "$svc"
  started=$(now_ms)
  if "${svc}_health"; then
    state="already running"
  else
    "${svc}_start"
    state="started in $(elapsed_since "$started")"
  fi
  "${svc}_ensure"
  summary "$svc" up "$("${svc}_endpoint")" "$("${svc}_describe") [$state]"
  unlock_service
done
