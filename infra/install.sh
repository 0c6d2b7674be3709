#!/usr/bin/env bash
# Usage: infra/install.sh [kafka|s3|postgres|s3b|registry|spark|chromium|all]...   (default: all)
# Installs/builds only (nothing is started): Kafka jars via Maven, MinIO via
# go install, PostgreSQL via apt-get if missing. Cached: a second run is instant.
# `spark` (infra/spark.sh: Spark + Iceberg jars, not a service) only when named: `all`
# means the services, and Spark's 212 MB are for the tests that read the Iceberg table.
# `chromium` (infra/chromium.sh: Debian's package, for the viewer's browser tests) likewise.
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
want_spark=0 want_chromium=0 service_args=()
for arg in "$@"; do
  case "$arg" in
    spark) want_spark=1 ;;
    chromium) want_chromium=1 ;;
    *) service_args+=("$arg") ;;
  esac
done
if [[ $want_spark -eq 1 ]]; then bash "$INFRA_DIR/spark.sh" install; fi
if [[ $want_chromium -eq 1 ]]; then
  started=$(now_ms)
  where=$(bash "$INFRA_DIR/chromium.sh" install)
  summary chromium installed "$where" "[$(elapsed_since "$started")]"
fi
# Only tools named: no services (parse_services would read "nothing" as all of them).
if [[ $((want_spark + want_chromium)) -gt 0 && ${#service_args[@]} -eq 0 ]]; then exit 0; fi
parse_services "${service_args[@]}"

for svc in "${SERVICES[@]}"; do
  lock_service "$svc"
  started=$(now_ms)
  "${svc}_install"
  case "$svc" in
    kafka) where="$KAFKA_LIBS (Apache Kafka $KAFKA_VERSION)" ;;
    s3) where="$MINIO_BIN (MinIO $MINIO_VERSION)" ;;
    s3b) where="$VERSITYGW_BIN (versitygw $VERSITYGW_VERSION)" ;;
    postgres) where="$(pg_bindir) ($("$(pg_bindir)/postgres" --version))" ;;
    registry) where="$REGISTRY_HOME/app (Apicurio Registry $REGISTRY_VERSION)" ;;
  esac
  summary "$svc" installed "$where" "[$(elapsed_since "$started")]"
  unlock_service
done
