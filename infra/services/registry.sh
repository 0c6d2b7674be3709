#!/usr/bin/env bash
# Apicurio Registry, a Confluent-compatible schema registry (Apache-2.0), run from
# its Maven Central build (io.apicurio:apicurio-registry-app, classifier `all`,
# a Quarkus app as tar.gz). Sourced by lib.sh.
#
#   endpoint        http://127.0.0.1:$REGISTRY_PORT/apis/ccompat/v7 (8081: Confluent's usual port)
#   management      127.0.0.1:$REGISTRY_MGMT_PORT (9091; Quarkus' default 9000 is MinIO's)
#   storage         AUDIT_REGISTRY_STORAGE=mem (default): a restart forgets every schema
#                   (producers register again at start-up); =kafkasql: a journal topic
#                   ($AUDIT_REGISTRY_KAFKASQL_TOPIC) on the local broker, survives restarts
#   compatibility   global rule BACKWARD (Confluent's default; Apicurio's is NONE,
#                   with which the usual clients' register() fails once a subject exists)
#   java            needs Java >= 21: $AUDIT_REGISTRY_JAVA, else the first java >= 21
#                   on PATH or under /usr/lib/jvm (this machine kind ships Temurin 25)

REGISTRY_HOME="$INFRA_HOME/registry/$REGISTRY_VERSION"
# Keyed on the port, so a test can run a private instance (its own port) beside the shared one.
REGISTRY_PIDFILE="$RUN_DIR/registry-$REGISTRY_PORT.pid"
REGISTRY_LOG="$LOG_DIR/registry-$REGISTRY_PORT.log"
REGISTRY_STORAGE="${AUDIT_REGISTRY_STORAGE:-mem}"
REGISTRY_KAFKASQL_TOPIC="${AUDIT_REGISTRY_KAFKASQL_TOPIC:-audit-registry-journal}"
# Matches our server's command line, and nothing else's, when checking a pid file.
REGISTRY_PATTERN="-Dquarkus.http.port=$REGISTRY_PORT "

registry_endpoint() { echo "http://127.0.0.1:$REGISTRY_PORT/apis/ccompat/v7"; }

# ---- install ----

registry_installed() { [[ -f "$REGISTRY_HOME/.installed" && -f "$REGISTRY_HOME/app/quarkus-run.jar" ]]; }

registry_install() {
  if registry_installed; then return 0; fi
  command -v mvn >/dev/null || apt_install maven
  local started; started=$(now_ms)
  local artifact="io.apicurio:apicurio-registry-app:$REGISTRY_VERSION:tar.gz:all"
  log "registry: fetching $artifact from Maven Central (158 MB; log: $LOG_DIR/registry-install.log)"
  mkdir -p "$REGISTRY_HOME"
  # Through Maven (its local repository is the download cache), then unpacked
  # into a scratch dir swapped in whole, so an interrupted install is never used.
  local tmp="$REGISTRY_HOME/app.partial"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  if ! mvn -B -q dependency:copy -Dartifact="$artifact" -DoutputDirectory="$tmp" >"$LOG_DIR/registry-install.log" 2>&1; then
    show_log_tail "$LOG_DIR/registry-install.log"
    die "registry: could not fetch $artifact, see $LOG_DIR/registry-install.log"
  fi
  tar -xzf "$tmp/apicurio-registry-app-$REGISTRY_VERSION-all.tar.gz" -C "$tmp" || die "registry: unpacking failed"
  rm -f "$tmp/apicurio-registry-app-$REGISTRY_VERSION-all.tar.gz"
  [[ -f "$tmp/quarkus-run.jar" ]] || die "registry: quarkus-run.jar missing after unpacking"
  rm -rf "$REGISTRY_HOME/app"
  mv "$tmp" "$REGISTRY_HOME/app"
  echo "$REGISTRY_VERSION" >"$REGISTRY_HOME/.installed"
  log "registry: installed Apicurio Registry $REGISTRY_VERSION ($(du -sh "$REGISTRY_HOME/app" | cut -f1)) in $(elapsed_since "$started")"
}

# java_major JAVA: the major version of a java binary (0 when it does not run).
java_major() {
  local v
  v=$("$1" -XshowSettings:properties -version 2>&1 | awk -F' = ' '/java.specification.version/ {print $2}')
  echo "${v%%.*}" | grep -E '^[0-9]+$' || echo 0
}

# registry_java: prints a java binary >= 21.
registry_java() {
  local candidates=() j
  [[ -n "${AUDIT_REGISTRY_JAVA:-}" ]] && candidates+=("$AUDIT_REGISTRY_JAVA")
  command -v java >/dev/null && candidates+=("$(command -v java)")
  for j in /usr/lib/jvm/*/bin/java /opt/*/bin/java; do [[ -x "$j" ]] && candidates+=("$j"); done
  for j in "${candidates[@]}"; do
    if (($(java_major "$j") >= 21)); then echo "$j"; return 0; fi
  done
  die "registry: Apicurio Registry needs Java >= 21; none found (set AUDIT_REGISTRY_JAVA, or install e.g. a Temurin 21+ JDK under /usr/lib/jvm)"
}

# ---- health: Apicurio's readiness probe on the management port, then the ccompat API ----

registry_health() {
  curl -fsS -o /dev/null --max-time 3 "http://127.0.0.1:$REGISTRY_MGMT_PORT/health/ready" 2>/dev/null &&
    curl -fsS -o /dev/null --max-time 3 "http://127.0.0.1:$REGISTRY_PORT/apis/ccompat/v7/subjects" 2>/dev/null
}

registry_pid() { pidfile_pid "$REGISTRY_PIDFILE" "$REGISTRY_PATTERN"; }
registry_running() { registry_pid >/dev/null; }

registry_describe() {
  if registry_running; then
    echo "Apicurio Registry $REGISTRY_VERSION (storage $REGISTRY_STORAGE, global compatibility BACKWARD), management :$REGISTRY_MGMT_PORT"
  else
    echo "schema registry (not started by these scripts)"
  fi
}

# ---- start / stop / reset ----

registry_start() {
  if ! registry_running; then
    if port_open "$REGISTRY_PORT" || port_open "$REGISTRY_MGMT_PORT"; then
      die "registry: port $REGISTRY_PORT or $REGISTRY_MGMT_PORT is in use by a process these scripts did not start"
    fi
    registry_install
    local java; java=$(registry_java)
    # shellcheck disable=SC2206 # AUDIT_REGISTRY_HEAP_OPTS is a list of JVM flags
    local heap=(${AUDIT_REGISTRY_HEAP_OPTS:--Xms64m -Xmx512m})
    local storage=()
    case "$REGISTRY_STORAGE" in
      mem) ;;
      kafkasql) storage=(-Dapicurio.storage.kind=kafkasql "-Dapicurio.kafkasql.bootstrap.servers=127.0.0.1:$KAFKA_PORT"
        "-Dapicurio.kafkasql.topic=$REGISTRY_KAFKASQL_TOPIC" "-Dapicurio.kafkasql.snapshots.topic=$REGISTRY_KAFKASQL_TOPIC-snapshots") ;;
      *) die "registry: AUDIT_REGISTRY_STORAGE must be mem or kafkasql (got '$REGISTRY_STORAGE')" ;;
    esac
    (
      cd "$REGISTRY_HOME/app"
      spawn_daemon "$REGISTRY_PIDFILE" "$REGISTRY_LOG" "$java" "${heap[@]}" -XX:+ExitOnOutOfMemoryError \
        -Dquarkus.http.host=127.0.0.1 "-Dquarkus.http.port=$REGISTRY_PORT" \
        -Dquarkus.management.host=127.0.0.1 "-Dquarkus.management.port=$REGISTRY_MGMT_PORT" \
        -Dapicurio.rules.global.compatibility=BACKWARD "${storage[@]}" \
        -jar "$REGISTRY_HOME/app/quarkus-run.jar"
    )
  fi
  wait_healthy registry "$START_TIMEOUT" registry_health "$REGISTRY_PIDFILE" "$REGISTRY_LOG"
}

registry_ensure() { :; } # schemas are registered by the producers

registry_stop() {
  local pid
  if pid=$(registry_pid); then
    stop_pid registry "$pid"
  elif registry_health; then
    warn "registry: something answers on :$REGISTRY_PORT but was not started by these scripts; left alone"
  fi
  rm -f "$REGISTRY_PIDFILE"
}

registry_wipe() { :; } # in-memory storage: stopping it is the wipe
