#!/usr/bin/env bash
# Usage: infra/python.sh   -> prints the path of a Python with infra/python-requirements.txt installed.
# A virtualenv under $INFRA_HOME/python, made once and remade only when the
# requirements change (their hash is kept beside it). For the interop tests:
# readers outside the project (pyarrow) reading what the project stores.
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ensure_dirs
VENV="$INFRA_HOME/python"
REQ="$INFRA_DIR/python-requirements.txt"
want=$(sha256sum "$REQ" | cut -c1-16)
exec 8>"$RUN_DIR/python.lock"
flock 8
if [[ ! -x "$VENV/bin/python" || "$(cat "$VENV/.requirements" 2>/dev/null)" != "$want" ]]; then
  started=$(now_ms)
  log "python: installing $(grep -v '^#' "$REQ" | tr '\n' ' ')into $VENV (log: $LOG_DIR/python-install.log)"
  rm -rf "$VENV"
  python3 -m venv "$VENV" >"$LOG_DIR/python-install.log" 2>&1 || { show_log_tail "$LOG_DIR/python-install.log"; die "python: venv failed"; }
  "$VENV/bin/pip" install --disable-pip-version-check -q -r "$REQ" >>"$LOG_DIR/python-install.log" 2>&1 \
    || { show_log_tail "$LOG_DIR/python-install.log"; die "python: pip install failed"; }
  echo "$want" >"$VENV/.requirements"
  log "python: ready in $(elapsed_since "$started")"
fi
echo "$VENV/bin/python"
