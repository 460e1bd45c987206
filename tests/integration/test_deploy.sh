#!/usr/bin/env bash
#
# test_deploy.sh - validates everything in deploy/ without a cluster, a container runtime or
# systemd as PID 1:
#   - yamllint --strict over deploy/
#   - every Kustomize overlay (and the base) renders with `kubectl kustomize`; every rendered
#     object validates against kubernetes-models / @kubernetes-models/prometheus-operator; the
#     policy of issue 7 item 2 holds (and catches deliberately broken variants); the daemons
#     accept the rendered configuration (--check-config); the overlays fit together (origins,
#     topics, consumer groups). Skipped with a note when kubectl is absent.
#   - the alert rules pass `promtool check rules` and `promtool test rules`; the PrometheusRule
#     in the base is generated from them; every PromQL expression of the Grafana dashboard parses
#   - the systemd units pass `systemd-analyze verify` with empty stderr (ExecStart pointed at the
#     build's binaries, or stubs) and carry the required settings
#   - the sample configs hold every key of the option tables and pass --check-config, also
#     with every commented-out key enabled
#   - the Dockerfile's runtime stage installs the package of every library the binaries link
#     (and, with XDCR_TEST_DOCKER=1 and a Docker daemon, the image builds and runs as non-root)
# npm packages are installed with `npm ci` into $XDCR_BUILD_DIR/deploy-validate (reused while
# tests/validate/package-lock.json is unchanged), never into the source tree.
set -euo pipefail

: "${XDCR_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
# shellcheck source=../support/harness.sh
source "$XDCR_SOURCE_DIR/tests/support/harness.sh"

DEPLOY="$XDCR_SOURCE_DIR/deploy"
VALIDATE_SRC="$XDCR_SOURCE_DIR/tests/validate"
FWD_BIN="$XDCR_BUILD_DIR/forwarder/xdcr-forwarder"
CONS_BIN="$XDCR_BUILD_DIR/consumer/xdcr-consumer"

h_init
WORK="$H_DIR/deploy"
mkdir -p "$WORK"

require() {
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null 2>&1 ||
            h_fail "$tool is not installed (run scripts/install-deps.sh)"
    done
}

have_binaries() {
    [[ -x "$FWD_BIN" && -x "$CONS_BIN" ]]
}

require node npm yamllint promtool systemd-analyze

# ---- npm packages, cached outside the source tree ---------------------------------------------

NODE_DIR="${XDCR_DEPLOY_NODE_DIR:-$XDCR_BUILD_DIR/deploy-validate}"
if ! mkdir -p "$NODE_DIR" 2>/dev/null || [[ ! -w "$NODE_DIR" ]]; then
    NODE_DIR="$WORK/node"
    mkdir -p "$NODE_DIR"
fi
cp "$VALIDATE_SRC"/package.json "$VALIDATE_SRC"/package-lock.json "$VALIDATE_SRC"/*.mjs "$NODE_DIR"/
install_npm_packages() {
    local want have=""
    want=$(cat "$NODE_DIR/package.json" "$NODE_DIR/package-lock.json" "$(command -v node)" | sha256sum)
    want=${want%% *}
    [[ -r "$NODE_DIR/.installed" ]] && have=$(cat "$NODE_DIR/.installed")
    if [[ "$have" == "$want" && -d "$NODE_DIR/node_modules" ]]; then
        echo "npm packages up to date in $NODE_DIR"
        return 0
    fi
    rm -f "$NODE_DIR/.installed"
    (cd "$NODE_DIR" && timeout -k 10 600 npm ci --no-audit --no-fund --loglevel=error) || return 1
    echo "$want" >"$NODE_DIR/.installed"
}
# One installer at a time per cache directory (parallel ctest runs share the build dir).
h_check "npm ci installs the pinned validators in $NODE_DIR" \
    flock "$NODE_DIR/.lock" bash -c "$(declare -f install_npm_packages); NODE_DIR='$NODE_DIR' install_npm_packages"

nodejs() {
    (cd "$NODE_DIR" && node "$@")
}

# node_stdin FILE SCRIPT ARGS...: a validator script reading FILE on stdin
node_stdin() {
    local input=$1
    shift
    (cd "$NODE_DIR" && node "$@" <"$input")
}

# render DIR OUT: kubectl kustomize DIR into OUT
render() {
    "$KUBECTL" kustomize "$1" >"$2"
}

# ---- YAML style ------------------------------------------------------------------------------

h_check "yamllint --strict passes on deploy/" \
    yamllint --strict -f parsable -c "$DEPLOY/.yamllint" "$DEPLOY"

# ---- Kubernetes: render, validate, policy, configuration, topology ---------------------------

KUBECTL=$(command -v kubectl || true)
if [[ -z "$KUBECTL" ]]; then
    echo "# SKIP: kubectl is not installed: the Kustomize overlays are not rendered, validated or" \
        "policy-checked on this machine (install kubectl to run that part)"
else
    h_check "the base renders with kubectl kustomize" \
        render "$DEPLOY/k8s/base" "$WORK/base.yaml"
    h_check "every object of the base validates against its model" \
        node_stdin "$WORK/base.yaml" validate.mjs

    printf 'apiVersion: v1\nkind: Service\nmetadata:\n  name: broken\nspec:\n  ports:\n    - port: "http"\n' \
        >"$WORK/broken.yaml"
    h_check_fails "the validator rejects an invalid object" \
        node_stdin "$WORK/broken.yaml" validate.mjs
    h_assert_contains "$H_OUT" "Service/broken" "the validator names the invalid object"

    overlays=()
    for dir in "$DEPLOY"/k8s/overlays/*/; do
        overlays+=("$(basename "$dir")")
    done
    ((${#overlays[@]} >= 2)) || h_fail "expected an overlay per DC under deploy/k8s/overlays, found ${overlays[*]:-none}"
    topology_args=()
    for dc in "${overlays[@]}"; do
        out="$WORK/$dc.yaml"
        h_check "overlay $dc renders with kubectl kustomize" \
            render "$DEPLOY/k8s/overlays/$dc" "$out"
        h_check "overlay $dc: every object validates against its model" \
            node_stdin "$out" validate.mjs
        echo "#   $H_OUT"
        h_check "overlay $dc: the deployment policy holds and catches broken variants" \
            node_stdin "$out" policy.mjs --self-test --extract "$WORK/extract-$dc"
        echo "#   $H_OUT"
        topology_args+=("$dc=$WORK/extract-$dc/summary.json")
        if have_binaries; then
            echo "secret" >"$WORK/secret"
            while IFS=$'\t' read -r daemon base; do
                [[ -n "$daemon" ]] || continue
                bin=$([[ "$daemon" == forwarder ]] && echo "$FWD_BIN" || echo "$CONS_BIN")
                mapfile -t envs <"$WORK/extract-$dc/$base.env"
                h_check "overlay $dc: xdcr-$daemon accepts its rendered configuration ($base)" \
                    env -i PATH="$PATH" "${envs[@]}" "$bin" --config "$WORK/extract-$dc/$base.conf" \
                    --pg.password_file="$WORK/secret" --check-config
            done <"$WORK/extract-$dc/daemons.tsv"
        fi
    done
    h_check "the overlays fit together (origins, topics, consumer groups)" \
        nodejs topology.mjs "${topology_args[@]}"
    echo "#   $H_OUT"
fi

# ---- Prometheus and Grafana ------------------------------------------------------------------

h_check "promtool check rules passes on the alert rules" \
    promtool check rules "$DEPLOY/prometheus/xdcr-alerts.yaml"
h_check "promtool test rules passes" \
    promtool test rules "$DEPLOY/prometheus/xdcr-alerts.test.yaml"
sh "$DEPLOY/prometheus/make-prometheusrule.sh" >"$WORK/prometheusrule.yaml"
h_check "the PrometheusRule in the base is generated from the alert rules" \
    diff -u "$DEPLOY/k8s/base/xdcr-prometheusrule.yaml" "$WORK/prometheusrule.yaml"
h_check "the dashboard is well-formed and its expressions convert to rules" \
    node_stdin /dev/null dashboard.mjs "$DEPLOY/grafana/xdcr-dashboard.json" --out "$WORK/dashboard-rules.yaml"
h_check "every PromQL expression of the dashboard parses (promtool check rules)" \
    promtool check rules "$WORK/dashboard-rules.yaml"

# ---- systemd units -------------------------------------------------------------------------------

# systemd-analyze verify checks that ExecStart= is executable: point it at the build's binaries,
# or at stubs where there is no build.
mkdir -p "$WORK/units" "$WORK/bin"
for daemon in forwarder consumer; do
    bin="$XDCR_BUILD_DIR/$daemon/xdcr-$daemon"
    if [[ ! -x "$bin" ]]; then
        bin="$WORK/bin/xdcr-$daemon"
        printf '#!/bin/sh\nexit 0\n' >"$bin"
        chmod 755 "$bin"
    fi
    unit="$DEPLOY/systemd/xdcr-$daemon.service"
    [[ -r "$unit" ]] || h_fail "missing $unit"
    grep -q "^ExecStart=/usr/local/bin/xdcr-$daemon " "$unit" ||
        h_fail "$unit: ExecStart= must run /usr/local/bin/xdcr-$daemon"
    sed "s#/usr/local/bin/xdcr-$daemon#$bin#" "$unit" >"$WORK/units/xdcr-$daemon.service"
    for setting in 'Type=notify' 'Restart=on-failure' 'RestartPreventExitStatus=2 3 4 5 6' \
        'NoNewPrivileges=yes' 'ProtectSystem=strict' 'ProtectHome=yes' 'PrivateTmp=yes' \
        'DynamicUser=yes' 'CapabilityBoundingSet=' 'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX' \
        'SystemCallFilter=@system-service'; do
        grep -qxF "$setting" "$unit" || h_fail "$unit: expected the line $setting"
    done
    stop=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)s$/\1/p' "$unit")
    if [[ -z "$stop" ]] || ((stop < 20)); then
        h_fail "$unit: TimeoutStopSec= must be at least drain.timeout (10s) + 10s, in seconds"
    fi
done
h_pass "the units carry Type=notify, the restart policy, hardening and a stop timeout above the drain time"

verify_units() {
    local err rc=0
    err=$(cd "$1" && systemd-analyze verify "${@:2}" 2>&1 >/dev/null) || rc=$?
    if ((rc != 0)) || [[ -n "$err" ]]; then
        echo "systemd-analyze verify: status $rc, stderr: $err"
        return 1
    fi
}
h_check "systemd-analyze verify passes on the units with empty stderr" \
    verify_units "$WORK/units" "$WORK/units/xdcr-forwarder.service" "$WORK/units/xdcr-consumer.service"
sed 's/^Type=notify$/Type=notifyy/' "$WORK/units/xdcr-forwarder.service" >"$WORK/units/broken.service"
h_check_fails "systemd-analyze verify output catches a broken unit" \
    verify_units "$WORK/units" "$WORK/units/broken.service"

# ---- sample configuration files ------------------------------------------------------------------

if ! have_binaries; then
    echo "# SKIP: no xdcr-forwarder / xdcr-consumer in $XDCR_BUILD_DIR: sample configs and" \
        "rendered configs are not checked against the option tables"
else
    echo "secret" >"$WORK/secret"
    for daemon in forwarder consumer; do
        bin=$([[ "$daemon" == forwarder ]] && echo "$FWD_BIN" || echo "$CONS_BIN")
        sample="$DEPLOY/config/$daemon.conf.sample"
        mapfile -t keys < <("$bin" --help | sed -n '/^configuration keys/,/^$/p' |
            awk 'NR > 2 && NF > 0 {print $1}')
        ((${#keys[@]} > 5)) || h_fail "could not read the option table from $bin --help"
        missing=()
        for key in "${keys[@]}"; do
            grep -qE "^#?${key//./\\.} =( |$)" "$sample" || missing+=("$key")
        done
        ((${#missing[@]} == 0)) || h_fail "$sample does not explain: ${missing[*]}"
        h_pass "$daemon.conf.sample covers all ${#keys[@]} keys of the option table"
        h_check "$daemon.conf.sample passes --check-config" \
            env -i PATH="$PATH" "$bin" --config "$sample" --check-config
        sed -E 's/^#([a-z][a-z0-9_.]*) =( |$)/\1 =\2/' "$sample" >"$WORK/$daemon-all.conf"
        file_flags=()
        for key in "${keys[@]}"; do
            [[ "$key" == *_file ]] && file_flags+=("--$key=$WORK/secret")
        done
        h_check "$daemon.conf.sample with every commented-out key enabled passes --check-config" \
            env -i PATH="$PATH" "$bin" --config "$WORK/$daemon-all.conf" "${file_flags[@]}" --check-config
    done
fi

# ---- Dockerfile ------------------------------------------------------------------------------------

DOCKERFILE="$DEPLOY/docker/Dockerfile"
runtime_stage=$(awk '/^FROM /{n++} n >= 2' "$DOCKERFILE")
[[ -n "$runtime_stage" ]] || h_fail "$DOCKERFILE: expected a build stage and a runtime stage"
if ! grep -qF 'FROM ${DEBIAN_IMAGE}' <<<"$runtime_stage" ||
    ! grep -qx 'ARG DEBIAN_IMAGE=debian:bookworm-slim' "$DOCKERFILE"; then
    h_fail "$DOCKERFILE: the runtime stage must be debian:bookworm-slim"
fi
grep -qE '^USER [1-9][0-9]*:[1-9][0-9]*$' <<<"$runtime_stage" ||
    h_fail "$DOCKERFILE: the runtime stage must run as a numeric non-root USER"
if grep -qE 'build-essential|cmake|-dev( |$)' <<<"$runtime_stage"; then
    h_fail "$DOCKERFILE: the runtime stage installs build tools or -dev packages"
fi
while read -r dir; do
    [[ "$dir" == tests ]] && continue
    grep -qx "COPY $dir/ $dir/" "$DOCKERFILE" || h_fail "$DOCKERFILE: the build stage does not copy $dir/"
done < <(sed -n 's/^add_subdirectory(\([a-z_]*\))$/\1/p' "$XDCR_SOURCE_DIR/CMakeLists.txt")
h_pass "the Dockerfile builds in one stage and runs in a Debian slim stage as a non-root user"
if have_binaries && command -v dpkg >/dev/null; then
    mapfile -t libs < <(objdump -p "$FWD_BIN" "$CONS_BIN" "$XDCR_BUILD_DIR/cli/xdcr" 2>/dev/null |
        awk '/NEEDED/ {print $2}' | sort -u)
    ((${#libs[@]} > 0)) || h_fail "could not read the libraries the binaries link (objdump)"
    missing=()
    for lib in "${libs[@]}"; do
        # prefer the native architecture's copy (libm.so.6 also exists in libc6-i386)
        pkg=$(dpkg -S "*/$lib" 2>/dev/null | grep -F "/$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)/" |
            head -n 1 | cut -d: -f1)
        [[ -n "$pkg" ]] || pkg=$(dpkg -S "*/$lib" 2>/dev/null | head -n 1 | cut -d: -f1)
        [[ -n "$pkg" ]] || h_fail "no Debian package provides $lib"
        case "$pkg" in
        libc6 | libgcc-s1 | libasan* | libubsan* | liblsan* | libtsan*) continue ;;
        esac
        grep -qE "(^|[[:space:]])$pkg([[:space:]]|$)" <<<"$runtime_stage" || missing+=("$pkg ($lib)")
    done
    ((${#missing[@]} == 0)) || h_fail "$DOCKERFILE: the runtime stage lacks ${missing[*]}"
    h_pass "the runtime stage installs the package of every library the binaries link"
fi
if [[ "${XDCR_TEST_DOCKER:-0}" == 1 ]]; then
    require docker
    tag="xdcr-test-deploy:$$"
    h_check "docker build succeeds" \
        docker build -q -f "$DOCKERFILE" -t "$tag" "$XDCR_SOURCE_DIR"
    h_check "the image runs the daemons" \
        docker run --rm "$tag" /usr/local/bin/xdcr-consumer --version
    h_assert_eq 10001 "$(docker run --rm "$tag" id -u)" "the image runs as uid 10001"
    docker image rm -f "$tag" >/dev/null 2>&1 || true
else
    echo "# SKIP: image build (set XDCR_TEST_DOCKER=1 where a Docker daemon runs)"
fi

h_finish
