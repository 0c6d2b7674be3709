#!/usr/bin/env bash
# `npm test`: starts the infrastructure the tests need (Kafka, MinIO, PostgreSQL,
# versitygw: the second S3 server; the Apicurio schema registry; the Python readers of
# test/interop/ in venvs),
# type-checks, builds, runs every test, and stops what it started.
# Extra arguments go to jest (e.g. `npm test -- test/unit`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

started=()
for svc in kafka s3 postgres s3b registry; do
  bash infra/health.sh "$svc" >/dev/null 2>&1 || started+=("$svc")
done
cleanup() {
  if [[ ${#started[@]} -gt 0 && -z "${AUDIT_KEEP_INFRA:-}" ]]; then bash infra/down.sh "${started[@]}" || true; fi
}
trap cleanup EXIT

bash infra/up.sh kafka s3 postgres s3b registry
# MinIO's admin client, for the Object Lock and least-privilege tests (infra/s3-admin.sh).
bash infra/s3-admin.sh mc-path >/dev/null
# confluent-kafka's AvroDeserializer, the independent reader of registry-framed records.
AUDIT_TEST_PYTHON="$(bash infra/pytools.sh)"
export AUDIT_TEST_PYTHON
# Spark + Iceberg jars for the Iceberg table test (infra/spark.sh; ~10 s the first time, then cached).
bash infra/install.sh spark >/dev/null
# Chromium for the viewer's browser tests (infra/chromium.sh: Debian's package; instant once installed).
AUDIT_TEST_CHROMIUM="${AUDIT_TEST_CHROMIUM:-$(bash infra/chromium.sh install)}"
export AUDIT_TEST_CHROMIUM
npm run --silent typecheck
npm run --silent build

export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-minioadmin}" AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-minioadmin}"
# Every file is isolated by its own topics, groups and store prefixes on the shared services, and
# the ones that stop or restart a server do it to private instances of their own
# (test/helpers/private-infra.ts), so all of them run in parallel workers.
status=0
if [[ $# -gt 0 ]]; then
  npx jest --json --outputFile=.test-results.json "$@" || status=$?
  node test/summary.js .test-results.json || status=1
  exit "$status"
fi
npx jest --maxWorkers="${AUDIT_TEST_WORKERS:-4}" --json --outputFile=.test-results.json || status=$?
node test/summary.js .test-results.json || status=1
exit "$status"
