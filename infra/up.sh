#!/usr/bin/env bash
# Installs (cached), starts and health-checks the local services: up.sh [kafka|s3|postgres|all]...
# Already healthy services are left alone, so this is quick and quiet when everything is up.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
for svc in $(services_from_args "$@"); do
  case "$svc" in kafka | s3 | postgres) ;; *) die "unknown service '$svc'" ;; esac
  if "${svc}_health" 2>/dev/null; then continue; fi
  started=$SECONDS
  "${svc}_start"
  log "$("${svc}_describe") up in $((SECONDS - started))s"
done
