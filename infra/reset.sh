#!/usr/bin/env bash
# Stops services and wipes their data (the install cache is kept): reset.sh [kafka|s3|postgres|all]...
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
dispatch reset "$@"
