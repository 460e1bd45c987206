#!/usr/bin/env bash
#
# test_install.sh - `cmake --install` puts the three binaries, the systemd units and the sample
# configuration files in place, and the installed binaries run.
set -euo pipefail

: "${XDCR_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
# shellcheck source=../support/harness.sh
source "$XDCR_SOURCE_DIR/tests/support/harness.sh"

h_init
prefix="$H_DIR/prefix"
out=$(cmake --install "$XDCR_BUILD_DIR" --prefix "$prefix" 2>&1) || h_fail "cmake --install failed: $out"
for f in bin/xdcr bin/xdcr-forwarder bin/xdcr-consumer; do
    [[ -x "$prefix/$f" ]] || h_fail "$f is not installed"
done
h_pass "binaries installed"
for f in lib/systemd/system/xdcr-forwarder.service lib/systemd/system/xdcr-consumer.service \
    share/doc/xdcr/forwarder.conf.sample share/doc/xdcr/consumer.conf.sample; do
    [[ -s "$prefix/$f" ]] || h_fail "$f is not installed"
done
h_pass "systemd units and sample configurations installed"
grep -q '^Type=notify$' "$prefix/lib/systemd/system/xdcr-forwarder.service" ||
    h_fail "the installed forwarder unit is not Type=notify"
h_pass "the installed units are Type=notify"
h_assert_contains "$("$prefix/bin/xdcr-forwarder" --version)" "xdcr-forwarder" "installed forwarder runs"
h_assert_contains "$("$prefix/bin/xdcr-consumer" --version)" "xdcr-consumer" "installed consumer runs"
h_assert_contains "$("$prefix/bin/xdcr" --version 2>&1)" "xdcr" "installed CLI runs"
h_finish
