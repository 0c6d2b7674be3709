#!/usr/bin/env bash
# Kafka Connect standalone with the Apache Iceberg sink: the peer the consumer is
# measured against (bench/peer-throughput.ts). Not a shared service: each benchmark
# round starts its own worker in the foreground and stops it.
#
# Usage:
#   infra/connect.sh install      resolve the jars once (Maven Central, infra/connect/pom.xml)
#                                 into $AUDIT_INFRA_HOME/connect/<key>/libs; cached, ~0.1 s after
#   infra/connect.sh run          write the worker + sink config into $AUDIT_CONNECT_RUN_DIR and
#                                 exec the worker (foreground; SIGTERM stops it)
#   infra/connect.sh catalog-db   create the JDBC catalog's database and tables if missing (idempotent)
#   infra/connect.sh home         print the install directory (libs/, jars.sha256)
#
# `run` reads (required) AUDIT_CONNECT_TOPIC, AUDIT_CONNECT_NAME, AUDIT_CONNECT_RUN_DIR and
# (optional, defaults in brackets):
#   AUDIT_CONNECT_TABLE          Iceberg table, namespace.name                  [bench.<name>]
#   AUDIT_CONNECT_WAREHOUSE      warehouse root on S3                           [s3://$AUDIT_S3_BUCKET/iceberg]
#   AUDIT_CONNECT_CATALOG_DB     PostgreSQL database of the JDBC catalog        [iceberg_catalog]
#   AUDIT_CONNECT_COMMIT_MS      iceberg.control.commit.interval-ms             [10000] (the sink's default: 300000)
#   AUDIT_CONNECT_TASKS          tasks.max                                      [1]
#   AUDIT_CONNECT_CONVERTER      avro (registry-framed Avro, Apicurio converter) or json (schemaless JSON) [avro]
#   AUDIT_CONNECT_REGISTRY_URL   Apicurio's v2 API, for the avro converter      [http://127.0.0.1:$AUDIT_REGISTRY_PORT/apis/registry/v2]
#   AUDIT_CONNECT_REST_PORT      the worker's REST listener                     [8083]
#   AUDIT_CONNECT_HEAP_OPTS      JVM heap flags                                 [-Xms256m -Xmx2g] (connect-standalone's default)
#   AUDIT_CONNECT_JAVA           the JVM                                        [java on PATH]
#   AUDIT_CONNECT_JAVA_OPTS      more JVM flags, e.g. -XX:StartFlightRecording=filename=x.jfr to profile []
# plus the S3/PostgreSQL/Kafka ports and credentials of infra/lib.sh.
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CONNECT_POM="$INFRA_DIR/connect/pom.xml"
# Keyed on the pom and the jar list: editing either re-resolves into a new directory.
CONNECT_KEY="$(cat "$CONNECT_POM" "$INFRA_DIR/connect/jars.sha256" | sha256sum | cut -c1-12)"
CONNECT_HOME="$INFRA_HOME/connect/$CONNECT_KEY"
CONNECT_LIBS="$CONNECT_HOME/libs"

connect_installed() { [[ -f "$CONNECT_HOME/.installed" && -d "$CONNECT_LIBS" ]]; }

connect_install() {
  if connect_installed; then return 0; fi
  local missing=()
  command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
  command -v mvn >/dev/null || missing+=(maven)
  if [[ ${#missing[@]} -gt 0 ]]; then apt_install "${missing[@]}"; fi
  local started; started=$(now_ms)
  log "connect: resolving Kafka Connect + the Iceberg sink from Maven Central (log: $LOG_DIR/connect-install.log)"
  mkdir -p "$CONNECT_HOME"
  # Resolved into a scratch dir swapped in whole: an interrupted download is never used.
  local tmp="$CONNECT_HOME/libs.partial"
  rm -rf "$tmp" "$tmp.sha256"
  if ! mvn -B -q -f "$CONNECT_POM" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp" \
    >"$LOG_DIR/connect-install.log" 2>&1; then
    show_log_tail "$LOG_DIR/connect-install.log"
    die "connect: could not resolve infra/connect/pom.xml, see $LOG_DIR/connect-install.log"
  fi
  local jar
  for jar in connect-runtime iceberg-kafka-connect iceberg-parquet iceberg-aws-bundle postgresql apicurio-registry-utils-converter; do
    compgen -G "$tmp/$jar-[0-9]*.jar" >/dev/null || die "connect: $jar missing after resolution"
  done
  # Every jar must be the one recorded in infra/connect/jars.sha256, and no other:
  # Maven's resolution is pinned by the pom, this pins the bytes. After editing the pom,
  # regenerate the list: (cd $CONNECT_LIBS && sha256sum -- *.jar) > infra/connect/jars.sha256
  (cd "$tmp" && sha256sum -- *.jar) >"$tmp.sha256"
  if ! diff -q <(sort -k2 "$INFRA_DIR/connect/jars.sha256") <(sort -k2 "$tmp.sha256") >/dev/null; then
    diff <(sort -k2 "$INFRA_DIR/connect/jars.sha256") <(sort -k2 "$tmp.sha256") | head -n 20 >&2 || true
    die "connect: the resolved jars differ from infra/connect/jars.sha256 (lines above: < expected, > resolved)"
  fi
  rm -rf "$CONNECT_LIBS"
  mv "$tmp" "$CONNECT_LIBS"
  mv "$tmp.sha256" "$CONNECT_HOME/jars.sha256"
  date -Is >"$CONNECT_HOME/.installed"
  log "connect: installed ($(find "$CONNECT_LIBS" -name '*.jar' | wc -l) jars, $(du -sh "$CONNECT_LIBS" | cut -f1)) in $(elapsed_since "$started")"
}

connect_catalog_db() {
  local db="${AUDIT_CONNECT_CATALOG_DB:-iceberg_catalog}"
  [[ "$db" =~ ^[a-z_][a-z0-9_]*$ ]] || die "connect: AUDIT_CONNECT_CATALOG_DB must be a plain lower-case identifier (got '$db')"
  postgres_health || die "connect: PostgreSQL is not answering on :$PG_PORT (infra/up.sh postgres)"
  if [[ "$(pg_sql "SELECT 1 FROM pg_database WHERE datname = '$db'")" != 1 ]]; then
    # A concurrent creator may win the race; only a database still missing afterwards is an error.
    pg_sql "CREATE DATABASE $db" >/dev/null 2>&1 || true
    [[ "$(pg_sql "SELECT 1 FROM pg_database WHERE datname = '$db'")" == 1 ]] || die "connect: could not create database $db"
  fi
  # The catalog's own tables, as Iceberg 1.10's JdbcCatalog creates them (schema V1):
  # created here once, because each sink task opens the catalog at the same moment
  # and their concurrent create/migrate races kill a task ("column iceberg_type
  # already exists").
  PGOPTIONS="-c client_min_messages=warning" "$(pg_bindir)/psql" -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d "$db" -v ON_ERROR_STOP=1 >/dev/null <<'SQL' || die "connect: could not create the catalog tables in $db"
CREATE TABLE IF NOT EXISTS iceberg_tables(catalog_name VARCHAR(255) NOT NULL, table_namespace VARCHAR(255) NOT NULL,
  table_name VARCHAR(255) NOT NULL, metadata_location VARCHAR(1000), previous_metadata_location VARCHAR(1000),
  PRIMARY KEY (catalog_name, table_namespace, table_name));
ALTER TABLE iceberg_tables ADD COLUMN IF NOT EXISTS iceberg_type VARCHAR(5);
CREATE TABLE IF NOT EXISTS iceberg_namespace_properties(catalog_name VARCHAR(255) NOT NULL, namespace VARCHAR(255) NOT NULL,
  property_key VARCHAR(255), property_value VARCHAR(1000), PRIMARY KEY (catalog_name, namespace, property_key));
SQL
}

need() { [[ -n "${!1:-}" ]] || die "connect: $1 is required"; }

connect_run() {
  need AUDIT_CONNECT_TOPIC
  need AUDIT_CONNECT_NAME
  need AUDIT_CONNECT_RUN_DIR
  connect_install
  connect_catalog_db
  local name="$AUDIT_CONNECT_NAME" dir="$AUDIT_CONNECT_RUN_DIR"
  [[ "$name" =~ ^[a-z0-9_]+$ ]] || die "connect: AUDIT_CONNECT_NAME must be lower-case letters, digits and _ (it names the table; got '$name')"
  local table="${AUDIT_CONNECT_TABLE:-bench.$name}"
  local warehouse="${AUDIT_CONNECT_WAREHOUSE:-s3://$S3_BUCKET/iceberg}"
  local db="${AUDIT_CONNECT_CATALOG_DB:-iceberg_catalog}"
  local registry_url="${AUDIT_CONNECT_REGISTRY_URL:-http://127.0.0.1:$REGISTRY_PORT/apis/registry/v2}"
  mkdir -p "$dir"

  local converter
  case "${AUDIT_CONNECT_CONVERTER:-avro}" in
    # The producer's registry framing is Confluent's (byte 0 + a 4-byte id). Apicurio
    # 3's ccompat API hands out content ids, so the converter looks ids up as such.
    avro) converter="value.converter=io.apicurio.registry.utils.converter.AvroConverter
value.converter.apicurio.registry.url=$registry_url
value.converter.apicurio.registry.as-confluent=true
value.converter.apicurio.registry.use-id=contentId
value.converter.apicurio.registry.headers.enabled=false" ;;
    json) converter="value.converter=org.apache.kafka.connect.json.JsonConverter
value.converter.schemas.enable=false" ;;
    *) die "connect: AUDIT_CONNECT_CONVERTER must be avro or json (got '${AUDIT_CONNECT_CONVERTER}')" ;;
  esac

  cat >"$dir/worker.properties" <<PROPS
# Generated by infra/connect.sh for one run.
bootstrap.servers=127.0.0.1:$KAFKA_PORT
key.converter=org.apache.kafka.connect.storage.StringConverter
$converter
offset.storage.file.filename=$dir/offsets
# A sink task answers the Iceberg coordinator's commit requests from put(), which an
# idle task reaches only when its poll times out, at the next offset flush (60 s by
# default): the last records of a topic would wait up to a minute plus a commit
# timeout to become visible. 1 s keeps an idle task responsive.
offset.flush.interval.ms=1000
listeners=http://127.0.0.1:${AUDIT_CONNECT_REST_PORT:-8083}
# Plugins sit on the classpath; scanning for them by ServiceLoader only is much
# faster to start than the reflective scan, and finds these.
plugin.discovery=service_load
PROPS

  cat >"$dir/sink.properties" <<PROPS
# Generated by infra/connect.sh for one run: the Iceberg sink on one topic.
name=$name
connector.class=org.apache.iceberg.connect.IcebergSinkConnector
tasks.max=${AUDIT_CONNECT_TASKS:-1}
topics=$AUDIT_CONNECT_TOPIC
iceberg.tables=$table
iceberg.tables.auto-create-enabled=true
iceberg.control.topic=$name.control
iceberg.control.commit.interval-ms=${AUDIT_CONNECT_COMMIT_MS:-10000}
iceberg.catalog.catalog-impl=org.apache.iceberg.jdbc.JdbcCatalog
iceberg.catalog.uri=jdbc:postgresql://127.0.0.1:$PG_PORT/$db
iceberg.catalog.jdbc.user=postgres
iceberg.catalog.jdbc.password=
iceberg.catalog.jdbc.schema-version=V1
iceberg.catalog.warehouse=$warehouse
iceberg.catalog.io-impl=org.apache.iceberg.aws.s3.S3FileIO
iceberg.catalog.s3.endpoint=http://127.0.0.1:$S3_PORT
iceberg.catalog.s3.path-style-access=true
iceberg.catalog.s3.access-key-id=$S3_USER
iceberg.catalog.s3.secret-access-key=$S3_PASSWORD
iceberg.catalog.client.region=$S3_REGION
PROPS

  cat >"$dir/log4j.properties" <<PROPS
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=$dir/connect.log
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.org.apache.kafka.clients=WARN
log4j.logger.org.reflections=ERROR
PROPS

  local java="${AUDIT_CONNECT_JAVA:-java}" heap extra
  # shellcheck disable=SC2206 # lists of JVM flags
  heap=(${AUDIT_CONNECT_HEAP_OPTS:--Xms256m -Xmx2g}) extra=(${AUDIT_CONNECT_JAVA_OPTS:-})
  # exec: the caller measures this very process (CPU, RSS) and stops it with SIGTERM.
  exec "$java" "${heap[@]}" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true "${extra[@]}" \
    "-Dlog4j.configuration=file:$dir/log4j.properties" -cp "$CONNECT_LIBS/*" \
    org.apache.kafka.connect.cli.ConnectStandalone "$dir/worker.properties" "$dir/sink.properties"
}

case "${1:-}" in
  install) connect_install; summary connect installed "$CONNECT_LIBS" "(Kafka Connect + Iceberg sink)" ;;
  catalog-db) connect_catalog_db ;;
  home) echo "$CONNECT_HOME" ;;
  run) connect_run ;;
  *) die "usage: infra/connect.sh install|catalog-db|run|home" ;;
esac
