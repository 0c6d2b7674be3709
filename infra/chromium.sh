#!/usr/bin/env bash
# Chromium for the browser tests of the web viewer (test/helpers/browser.ts drives it with
# playwright-core). Not a service: each test file launches its own headless browser.
#
# Usage:
#   infra/chromium.sh install   install Debian's `chromium` package when missing (root, apt-get);
#                               prints the binary's path; instant once installed
#   infra/chromium.sh path      print the binary's path, or fail when it is not installed
#
# Debian's package, not the browser playwright downloads: it comes from the same signed
# archive as the rest of the machine, gets its security updates with them, and needs no
# download from a CDN at test time. AUDIT_CHROMIUM (default /usr/bin/chromium) names
# another binary, e.g. on a machine without apt.
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CHROMIUM_BIN="${AUDIT_CHROMIUM:-/usr/bin/chromium}"

# A binary that exists but cannot start (missing libraries after a partial upgrade) is
# not installed as far as the tests are concerned.
chromium_works() { [[ -x "$CHROMIUM_BIN" ]] && "$CHROMIUM_BIN" --version >/dev/null 2>&1; }

chromium_install() {
  if chromium_works; then return 0; fi
  [[ -z "${AUDIT_CHROMIUM:-}" ]] || die "chromium: AUDIT_CHROMIUM=$AUDIT_CHROMIUM does not run (\"$AUDIT_CHROMIUM --version\" failed)"
  [[ $(id -u) -eq 0 ]] || die "chromium: $CHROMIUM_BIN is missing; install it with: sudo apt-get install -y chromium"
  command -v apt-get >/dev/null || die "chromium: $CHROMIUM_BIN is missing and there is no apt-get; set AUDIT_CHROMIUM to a Chromium binary"
  # Parallel test files (and people) may install at once: one does, the others wait and reuse it.
  exec 8>"$RUN_DIR/chromium-install.lock"
  flock -w 900 8 || die "chromium: could not get the install lock $RUN_DIR/chromium-install.lock within 900s"
  if chromium_works; then exec 8>&-; return 0; fi
  local started; started=$(now_ms)
  log "chromium: installing Debian's chromium package (log: $LOG_DIR/chromium-install.log)"
  # Lock::Timeout: another apt-get on the machine (not ours) makes this one wait, not fail.
  if ! { apt-get update -q -o DPkg::Lock::Timeout=600 &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=600 chromium; } \
    >>"$LOG_DIR/chromium-install.log" 2>&1; then
    show_log_tail "$LOG_DIR/chromium-install.log"
    die "chromium: apt-get install chromium failed, see $LOG_DIR/chromium-install.log"
  fi
  exec 8>&-
  chromium_works || die "chromium: installed, but \"$CHROMIUM_BIN --version\" fails (see $LOG_DIR/chromium-install.log)"
  log "chromium: installed ($("$CHROMIUM_BIN" --version 2>/dev/null)) in $(elapsed_since "$started")"
}

case "${1:-}" in
  install) chromium_install; echo "$CHROMIUM_BIN" ;;
  path) chromium_works || die "chromium: $CHROMIUM_BIN is not installed or does not run (infra/chromium.sh install)"; echo "$CHROMIUM_BIN" ;;
  *) die "usage: infra/chromium.sh install|path" ;;
esac
