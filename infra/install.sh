#!/usr/bin/env bash
# Usage: infra/install.sh [kafka|s3|postgres|s3b|registry|spark|all]...   (default: all)
# Installs/builds only (nothing is started): Kafka jars via Maven, MinIO via
# go install, PostgreSQL via apt-get if missing. Cached: a second run is instant.
# `spark` (infra/spark.sh: Spark + Iceberg jars, not a service) only when named: `all`
# means the services, and Spark's 212 MB are for the tests that read the Iceberg table.
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
want_spark=0 service_args=()
for arg in "$@"; do
  if [[ "$arg" == spark ]]; then want_spark=1; else service_args+=("$arg"); fi
done
if [[ $want_spark -eq 1 ]]; then bash "$INFRA_DIR/spark.sh" install; fi
# Only spark named: no services (parse_services would read "nothing" as all of them).
if [[ $want_spark -eq 1 && ${#service_args[@]} -eq 0 ]]; then exit 0; fi
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
