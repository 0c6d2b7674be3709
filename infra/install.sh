#!/usr/bin/env bash
# Usage: infra/install.sh [kafka|s3|postgres|s3b|registry|all]...   (default: all)
# Installs/builds only (nothing is started): Kafka jars via Maven, MinIO via
# go install, PostgreSQL via apt-get if missing. Cached: a second run is instant.
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
parse_services "$@"

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
