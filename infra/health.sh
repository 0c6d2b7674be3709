#!/usr/bin/env bash
# Exit 0 when every named service is healthy: health.sh [kafka|s3|postgres|all]...
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
status=0
for svc in $(services_from_args "$@"); do
  if "${svc}_health" 2>/dev/null; then echo "$svc: healthy"; else echo "$svc: down"; status=1; fi
done
exit $status
