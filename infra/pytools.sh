#!/usr/bin/env bash
# Usage: infra/pytools.sh    prints the path of a Python interpreter that has the
# independent readers the interop tests check the project against, from PyPI:
# Confluent's own Kafka client with its Avro/Schema Registry support (it decodes our
# records) and pyarrow (it reads the store through the maintainer's manifests).
# Installed once into a venv under $INFRA_HOME (git-ignored), keyed on the pinned
# requirements; later runs print the path at once.
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PYTOOLS_REQUIREMENT="${AUDIT_PYTOOLS_REQUIREMENT:-confluent-kafka[avro,schemaregistry]==2.16.1 pyarrow==26.0.1 pyiceberg[sql-sqlite]==0.12.0}"
PYTOOLS_HOME="$INFRA_HOME/pytools"
PYTOOLS_PY="$PYTOOLS_HOME/bin/python"

lock_service pytools
if ! [[ -x "$PYTOOLS_PY" && -f "$PYTOOLS_HOME/.installed" && "$(<"$PYTOOLS_HOME/.installed")" == "$PYTOOLS_REQUIREMENT" ]]; then
  command -v python3 >/dev/null || apt_install python3 python3-venv
  started=$(now_ms)
  log "pytools: installing $PYTOOLS_REQUIREMENT into $PYTOOLS_HOME (log: $LOG_DIR/pytools-install.log)"
  rm -rf "$PYTOOLS_HOME"
  { python3 -m venv "$PYTOOLS_HOME" && "$PYTOOLS_PY" -m pip install -q --disable-pip-version-check $PYTOOLS_REQUIREMENT; } \
    >"$LOG_DIR/pytools-install.log" 2>&1 || {
    show_log_tail "$LOG_DIR/pytools-install.log"
    die "pytools: installing $PYTOOLS_REQUIREMENT failed, see $LOG_DIR/pytools-install.log"
  }
  "$PYTOOLS_PY" -c 'from confluent_kafka.schema_registry.avro import AvroDeserializer' ||
    die "pytools: confluent_kafka's AvroDeserializer does not import"
  echo "$PYTOOLS_REQUIREMENT" >"$PYTOOLS_HOME/.installed"
  log "pytools: installed in $(elapsed_since "$started")"
fi
unlock_service
echo "$PYTOOLS_PY"
