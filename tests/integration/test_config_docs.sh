#!/usr/bin/env bash
#
# test_config_docs.sh - docs/configuration.md is what scripts/gen-config-docs.sh generates from
# the daemons built in XDCR_BUILD_DIR: a changed option (name, default, range, description)
# fails here until the file is regenerated.
set -euo pipefail

: "${XDCR_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${XDCR_BUILD_DIR:=$XDCR_SOURCE_DIR/build}"

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
"$XDCR_SOURCE_DIR/scripts/gen-config-docs.sh" "$XDCR_BUILD_DIR" - >"$tmp"
if ! diff -u "$XDCR_SOURCE_DIR/docs/configuration.md" "$tmp"; then
    echo "FAIL: docs/configuration.md is out of date: run scripts/gen-config-docs.sh $XDCR_BUILD_DIR" >&2
    echo "0 passed, 1 failed"
    exit 1
fi
echo "PASS: docs/configuration.md matches the daemons' option tables"
echo "1 passed, 0 failed"
