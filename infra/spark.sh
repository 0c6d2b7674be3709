#!/usr/bin/env bash
# Apache Spark 3.5 in local mode with Apache Iceberg's runtime and s3a: the engine the
# Iceberg table of the audit store is tested with (test/integration/iceberg-spark.test.ts).
# Not a shared service: a caller starts one JVM for its queries and ends it by closing stdin.
#
# Usage:
#   infra/spark.sh install   resolve the jars once (Maven Central, infra/spark/pom.xml), check
#                            them against infra/spark/jars.sha256, compile the SQL runner;
#                            cached in $AUDIT_INFRA_HOME/spark/<version>-<key>, ~20 ms after
#   infra/spark.sh sql       one Spark session answering SQL statements read from stdin (one
#                            per line) with one JSON line each on stdout, after a first
#                            {"ready":true,...} line (infra/spark/SqlLines.java); exits at EOF
#   infra/spark.sh home      print the install directory
#
# `sql` has the Iceberg catalog `lake` (a Hadoop catalog, so no catalog service) over the
# bucket: the table of a store at s3://BUCKET/a/b is lake.a.b.`_iceberg`. It reads
# (optional, defaults in brackets):
#   AUDIT_SPARK_WAREHOUSE    the catalog's root                          [s3a://$AUDIT_S3_BUCKET]
#   AUDIT_SPARK_S3_ENDPOINT  the S3 server                               [http://127.0.0.1:$AUDIT_S3_PORT]
#   AUDIT_SPARK_HEAP         the JVM's heap (driver and executor in one)  [768m]
#   AUDIT_SPARK_CORES        local[N]                                    [2]
#   AUDIT_SPARK_JAVA         the JVM (17 or 21)                          [java on PATH]
# plus AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY and AUDIT_S3_REGION of infra/lib.sh.
# Spark's log (WARN and above) goes to stderr.
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SPARK_POM="$INFRA_DIR/spark/pom.xml"
SPARK_VERSION="$(sed -n 's:.*<spark.version>\(.*\)</spark.version>.*:\1:p' "$SPARK_POM")"
# Keyed on everything that decides the install: editing any of them installs anew beside it.
SPARK_KEY="$(cat "$SPARK_POM" "$INFRA_DIR/spark/jars.sha256" "$INFRA_DIR/spark/SqlLines.java" | sha256sum | cut -c1-12)"
SPARK_HOME_DIR="$INFRA_HOME/spark/$SPARK_VERSION-$SPARK_KEY"
SPARK_LIBS="$SPARK_HOME_DIR/libs"

spark_installed() { [[ -f "$SPARK_HOME_DIR/.installed" && -d "$SPARK_LIBS" && -f "$SPARK_HOME_DIR/classes/SqlLines.class" ]]; }

spark_install() {
  if spark_installed; then return 0; fi
  local missing=()
  command -v javac >/dev/null || missing+=(openjdk-17-jdk-headless)
  command -v mvn >/dev/null || missing+=(maven)
  if [[ ${#missing[@]} -gt 0 ]]; then apt_install "${missing[@]}"; fi
  exec 8>"$RUN_DIR/spark-install.lock"
  flock -w 600 8 || die "spark: could not get the install lock within 600s"
  if spark_installed; then exec 8>&-; return 0; fi
  local started; started=$(now_ms)
  log "spark: resolving Spark $SPARK_VERSION + Iceberg + s3a from Maven Central (log: $LOG_DIR/spark-install.log)"
  mkdir -p "$SPARK_HOME_DIR"
  # Resolved into a scratch dir swapped in whole: an interrupted download is never used.
  local tmp="$SPARK_HOME_DIR/libs.partial"
  rm -rf "$tmp" "$tmp.sha256" "$SPARK_HOME_DIR/classes"
  # -C: a download whose .sha1 from the repository does not match fails (Maven only warns by default).
  if ! mvn -B -q -C -f "$SPARK_POM" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp" \
    >"$LOG_DIR/spark-install.log" 2>&1; then
    show_log_tail "$LOG_DIR/spark-install.log"
    die "spark: could not resolve infra/spark/pom.xml, see $LOG_DIR/spark-install.log"
  fi
  # Maven's resolution is pinned by the pom, this list pins the bytes: every jar must be
  # the one recorded, and no other. After editing the pom, regenerate it:
  #   (cd .infra/spark/<dir>/libs.partial && sha256sum -- *.jar) > infra/spark/jars.sha256
  (cd "$tmp" && sha256sum -- *.jar) >"$tmp.sha256"
  if ! diff -q <(sort -k2 "$INFRA_DIR/spark/jars.sha256") <(sort -k2 "$tmp.sha256") >/dev/null; then
    diff <(sort -k2 "$INFRA_DIR/spark/jars.sha256") <(sort -k2 "$tmp.sha256") | head -n 20 >&2 || true
    die "spark: the resolved jars differ from infra/spark/jars.sha256 (lines above: < expected, > resolved)"
  fi
  mkdir -p "$SPARK_HOME_DIR/classes"
  if ! javac -nowarn --release 17 -cp "$tmp/*" -d "$SPARK_HOME_DIR/classes" "$INFRA_DIR/spark/SqlLines.java" \
    >>"$LOG_DIR/spark-install.log" 2>&1; then
    show_log_tail "$LOG_DIR/spark-install.log"
    die "spark: could not compile infra/spark/SqlLines.java, see $LOG_DIR/spark-install.log"
  fi
  rm -rf "$SPARK_LIBS"
  mv "$tmp" "$SPARK_LIBS"
  mv "$tmp.sha256" "$SPARK_HOME_DIR/jars.sha256"
  date -Is >"$SPARK_HOME_DIR/.installed"
  exec 8>&-
  log "spark: installed ($(find "$SPARK_LIBS" -name '*.jar' | wc -l) jars, $(du -sh "$SPARK_LIBS" | cut -f1)) in $(elapsed_since "$started")"
}

spark_sql() {
  spark_install
  local java="${AUDIT_SPARK_JAVA:-java}"
  local endpoint="${AUDIT_SPARK_S3_ENDPOINT:-http://127.0.0.1:$S3_PORT}"
  # Not exec: the scratch dir (shuffle files, Spark's warehouse dir) is removed when the JVM ends.
  SPARK_SCRATCH="$(mktemp -d "${TMPDIR:-/tmp}/audit-spark.XXXXXX")"
  trap 'rm -rf "$SPARK_SCRATCH"' EXIT
  local scratch="$SPARK_SCRATCH"
  cat >"$scratch/log4j2.properties" <<'PROPS'
rootLogger.level = warn
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss.SSS} %p %c{1}: %m%n%ex
# Warns once per JVM that it found no native Hadoop library (it uses the Java code).
logger.nativecode.name = org.apache.hadoop.util.NativeCodeLoader
logger.nativecode.level = error
# s3a warns about the metrics system configuration files it does not find.
logger.metrics.name = org.apache.hadoop.metrics2
logger.metrics.level = error
PROPS
  # What Spark's own launcher passes to Java 17 (JavaModuleOptions): Spark reaches into
  # java.nio and sun.nio internals for off-heap buffers and serialisation.
  local opens=(java.lang java.lang.invoke java.lang.reflect java.io java.net java.nio java.util java.util.concurrent
    java.util.concurrent.atomic jdk.internal.ref sun.nio.ch sun.nio.cs sun.security.action sun.util.calendar)
  local jvm=(-XX:+IgnoreUnrecognizedVMOptions -Djdk.reflect.useDirectMethodHandle=false -Xss4m
    "-Xmx${AUDIT_SPARK_HEAP:-768m}" -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true
    "-Dlog4j2.configurationFile=$scratch/log4j2.properties" "-Djava.io.tmpdir=$scratch")
  local pkg
  for pkg in "${opens[@]}"; do jvm+=("--add-opens=java.base/$pkg=ALL-UNNAMED"); done
  local conf=(
    "spark.master=local[${AUDIT_SPARK_CORES:-2}]"
    # Bound to loopback: no hostname lookup, nothing reachable from outside, no port clashes with the UI.
    spark.driver.host=127.0.0.1 spark.driver.bindAddress=127.0.0.1 spark.ui.enabled=false
    "spark.sql.warehouse.dir=$scratch/warehouse"
    # Results are a few rows: 200 shuffle partitions would be 200 tasks per aggregate.
    spark.sql.shuffle.partitions=2
    spark.sql.extensions=org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions
    spark.sql.catalog.lake=org.apache.iceberg.spark.SparkCatalog
    spark.sql.catalog.lake.type=hadoop
    # Each query loads the table afresh (version-hint.text), so a session kept open across
    # maintenance passes sees every new snapshot; the cache would serve one up to 30 s old.
    spark.sql.catalog.lake.cache-enabled=false
    # Timestamps print and parse in UTC, like audit-query's, whatever the machine's zone.
    spark.sql.session.timeZone=UTC
    "spark.sql.catalog.lake.warehouse=${AUDIT_SPARK_WAREHOUSE:-s3a://$S3_BUCKET}"
    # The table's manifests name files as s3://, the URI every other engine uses: s3a serves both schemes.
    spark.hadoop.fs.s3.impl=org.apache.hadoop.fs.s3a.S3AFileSystem
    "spark.hadoop.fs.s3a.endpoint=$endpoint"
    "spark.hadoop.fs.s3a.endpoint.region=$S3_REGION"
    spark.hadoop.fs.s3a.path.style.access=true
    "spark.hadoop.fs.s3a.connection.ssl.enabled=$([[ $endpoint == https:* ]] && echo true || echo false)"
    spark.hadoop.fs.s3a.aws.credentials.provider=org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider
    "spark.hadoop.fs.s3a.access.key=$S3_USER"
    "spark.hadoop.fs.s3a.secret.key=$S3_PASSWORD"
  )
  local c
  for c in "${conf[@]}"; do jvm+=("-D$c"); done
  # Spark's own address lookup, done before any conf is read: loopback, quietly.
  SPARK_LOCAL_IP=127.0.0.1 "$java" "${jvm[@]}" -cp "$SPARK_LIBS/*:$SPARK_HOME_DIR/classes" SqlLines
}

case "${1:-}" in
  install) spark_install; summary spark installed "$SPARK_LIBS" "(Spark $SPARK_VERSION + Iceberg, local mode)" ;;
  sql) spark_sql ;;
  home) echo "$SPARK_HOME_DIR" ;;
  *) die "usage: infra/spark.sh install|sql|home" ;;
esac
