#!/usr/bin/env bash
# Apache Kafka, single node in KRaft mode (broker + controller), from Maven Central jars.

KAFKA_HOME="$INFRA_HOME/kafka/$KAFKA_VERSION"
KAFKA_DATA="$DATA/kafka"
KAFKA_PID="$RUN/kafka.pid"

kafka_install() {
  if [[ -f "$KAFKA_HOME/.installed" ]]; then return 0; fi
  command -v java >/dev/null || die "java is required for Kafka (apt-get install -y openjdk-17-jre-headless)"
  command -v mvn >/dev/null || die "maven is required to fetch Kafka (apt-get install -y maven)"
  log "kafka: resolving org.apache.kafka:kafka_2.13:$KAFKA_VERSION from Maven Central"
  mkdir -p "$KAFKA_HOME/libs"
  (cd "$INFRA_DIR/kafka" && mvn -q -B dependency:copy-dependencies \
    -Dkafka.version="$KAFKA_VERSION" -DoutputDirectory="$KAFKA_HOME/libs") >"$LOGS/kafka-install.log" 2>&1 ||
    die "kafka: maven failed, see $LOGS/kafka-install.log"
  touch "$KAFKA_HOME/.installed"
}

kafka_config() {
  mkdir -p "$KAFKA_DATA" "$KAFKA_HOME/config"
  cat >"$KAFKA_HOME/config/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://localhost:$KAFKA_PORT
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$KAFKA_DATA
num.partitions=3
default.replication.factor=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
delete.topic.enable=true
log.retention.hours=168
PROPS
  cat >"$KAFKA_HOME/config/log4j.properties" <<PROPS
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=$LOGS/kafka-server.log
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka=INFO
log4j.logger.org.apache.kafka=INFO
log4j.logger.state.change.logger=WARN
PROPS
}

kafka_java_args() {
  printf '%s\n' -Xms256m -Xmx1g -XX:+UseG1GC -Djava.awt.headless=true \
    "-Dlog4j.configuration=file:$KAFKA_HOME/config/log4j.properties" -cp "$KAFKA_HOME/libs/*"
}

kafka_java() {
  local args; mapfile -t args < <(kafka_java_args)
  java "${args[@]}" "$@"
}

kafka_health() {
  pid_alive "$KAFKA_PID" && port_open "$KAFKA_PORT" && grep -q 'Kafka Server started' "$LOGS/kafka-server.log" 2>/dev/null
}

kafka_start() {
  if kafka_health; then return 0; fi
  if port_open "$KAFKA_PORT"; then die "port $KAFKA_PORT is taken by another process"; fi
  kafka_install
  kafka_config
  if [[ ! -f "$KAFKA_DATA/meta.properties" ]]; then
    local cluster_id
    cluster_id=$(kafka_java kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)
    kafka_java kafka.tools.StorageTool format -t "$cluster_id" -c "$KAFKA_HOME/config/server.properties" \
      >"$LOGS/kafka-format.log" 2>&1 || die "kafka: storage format failed, see $LOGS/kafka-format.log"
  fi
  : >"$LOGS/kafka-server.log"
  local args; mapfile -t args < <(kafka_java_args)
  nohup java "${args[@]}" kafka.Kafka "$KAFKA_HOME/config/server.properties" >"$LOGS/kafka-stdout.log" 2>&1 &
  echo $! >"$KAFKA_PID"
  wait_until 120 "kafka on :$KAFKA_PORT" kafka_health || die "kafka did not start, see $LOGS/kafka-server.log"
}

kafka_stop() { stop_pidfile kafka "$KAFKA_PID"; }

kafka_reset() { kafka_stop; rm -rf "$KAFKA_DATA"; log "kafka data wiped"; }

kafka_describe() { echo "kafka     localhost:$KAFKA_PORT (Apache Kafka $KAFKA_VERSION, KRaft)"; }
