#!/usr/bin/env bash
# Stops local services (data is kept): down.sh [kafka|s3|postgres|all]...
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
dispatch stop "$@"
