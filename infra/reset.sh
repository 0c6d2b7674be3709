#!/usr/bin/env bash
# Usage: infra/reset.sh [kafka|s3|postgres|s3b|registry|all]...   (default: all)
# Stops the services and deletes their data (topics, objects, databases). The
# installed software is kept; the next `up` starts from an empty state.
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
parse_services "$@"

for svc in "${SERVICES[@]}"; do
  lock_service "$svc"
  "${svc}_stop"
  "${svc}_wipe"
  summary "$svc" reset "$("${svc}_endpoint")" "stopped, data wiped"
  unlock_service
done
