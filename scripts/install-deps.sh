#!/usr/bin/env bash
# install-deps.sh - install every Debian package that building, testing and the demo need.
# Idempotent: packages already present are left alone and apt is not touched at all.
set -euo pipefail

PACKAGES=(
    # build
    build-essential cmake pkg-config git
    librdkafka-dev libpq-dev libjansson-dev libcurl4-openssl-dev libmicrohttpd-dev
    libsystemd-dev libcunit1-dev
    # fuzzing and sanitizers
    clang-14 libclang-rt-14-dev
    # runtime for tests and the demo
    postgresql-15 postgresql-client-15 kcat openssl socat procps util-linux passwd
    curl ca-certificates python3 jq
    # checks
    valgrind prometheus yamllint fiu-utils clang-format systemd
)

missing=()
for p in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

# Node.js and npm (manifest validation) may come from another source than Debian's archive;
# install Debian's only when no node/npm is on PATH.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)

if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps: all ${#PACKAGES[@]} packages present"
    exit 0
fi

echo "install-deps: missing: ${missing[*]}"
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO=(sudo)
    else
        echo "install-deps: installing packages needs root: run 'sudo $0' (or as root), then retry" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "install-deps: installed ${#missing[@]} packages"
