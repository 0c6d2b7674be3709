#!/usr/bin/env bash
# Downloads and builds the local services into the cache without starting them.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
dispatch install "$@"
