#!/usr/bin/env bash
# Usage: infra/health.sh [-q] [kafka|s3|postgres|s3b|registry|all]...   (default: all)
# Exit 0 when every named service answers on its endpoint, 1 otherwise.
# Real round trips, no JVM: Kafka ApiVersions request, MinIO /minio/health/live,
# pg_isready. -q prints nothing.
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
quiet=false
if [[ "${1:-}" == -q || "${1:-}" == --quiet ]]; then quiet=true; shift; fi
parse_services "$@"

status=0
for svc in "${SERVICES[@]}"; do
  if "${svc}_health"; then state=healthy; else state=down; status=1; fi
  $quiet || summary "$svc" "$state" "$("${svc}_endpoint")" ""
done
exit "$status"
