#!/usr/bin/env bash
#
# bench/run.sh - xdcr against PostgreSQL's native logical replication, same machine, same run
# (issue 8). Builds a release build into build/bench, starts two PostgreSQL 15 clusters with
# identical settings (fsync on) through the test harness, and for each workload measures both
# systems alternately, end-to-end and catch-up, repeated; then the ceilings (pgoutput decoding,
# COPY) and the micro-benchmarks. Prints a side-by-side table and writes RESULTS.md.
#
#   bench/run.sh [--quick] [--reps N] [--workloads W1,W2,W3] [--systems native,xdcr]
#                [--modes e2e,catchup,replay] [--no-ceilings] [--no-micro] [--no-build]
#                [--results FILE]
#
# --quick: workloads 10x smaller (a smoke run, a few minutes); results go to
# bench/RESULTS-quick.md unless --results is given. See bench/README.md.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
BENCH_CMDLINE="bench/run.sh${*:+ $*}"

QUICK=0
REPS=3
WORKLOADS="W1,W2,W3"
SYSTEMS="native,xdcr"
MODES="e2e,catchup,replay"
CEILINGS=1
MICRO=1
BUILD=1
RESULTS=""

usage() {
    sed -n '9,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

while (($# > 0)); do
    case "$1" in
    --quick) QUICK=1 ;;
    --reps)
        REPS=${2:?--reps needs a number}
        shift
        ;;
    --workloads)
        WORKLOADS=${2:?}
        shift
        ;;
    --systems)
        SYSTEMS=${2:?}
        shift
        ;;
    --modes)
        MODES=${2:?}
        shift
        ;;
    --no-ceilings) CEILINGS=0 ;;
    --no-micro) MICRO=0 ;;
    --no-build) BUILD=0 ;;
    --results)
        RESULTS=${2:?}
        shift
        ;;
    -h | --help)
        usage
        exit 0
        ;;
    *)
        echo "bench/run.sh: unknown option $1" >&2
        usage >&2
        exit 2
        ;;
    esac
    shift
done
[[ "$REPS" =~ ^[1-9][0-9]*$ ]] || {
    echo "bench/run.sh: --reps must be a positive number" >&2
    exit 2
}

# shellcheck disable=SC2034 # the BENCH_W* sizes are used by lib/workloads.sh and lib/clusters.sh
if ((QUICK)); then
    BENCH_SCALE=quick
    BENCH_W1_ROWS=100000 BENCH_W1_TXN=10000
    BENCH_W2_TXNS=10000 BENCH_W2_PRELOAD=10000
    BENCH_W3_ROWS=20000 BENCH_W3_TXN=1000
    : "${RESULTS:=$BENCH_DIR/RESULTS-quick.md}"
else
    BENCH_SCALE=full
    BENCH_W1_ROWS=1000000 BENCH_W1_TXN=10000
    BENCH_W2_TXNS=100000 BENCH_W2_PRELOAD=100000
    BENCH_W3_ROWS=200000 BENCH_W3_TXN=1000
    : "${RESULTS:=$BENCH_DIR/RESULTS.md}"
fi

export XDCR_SOURCE_DIR=$ROOT
export XDCR_BUILD_DIR=${BENCH_BUILD_DIR:-$ROOT/build/bench}
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
BENCH_OUT="$XDCR_BUILD_DIR/results/$STAMP"
BENCH_RAW="$BENCH_OUT/raw.tsv"
BENCH_META="$BENCH_OUT/meta.tsv"
BENCH_CMDS="$BENCH_OUT/commands.md"
BENCH_FINDINGS="$BENCH_OUT/findings.txt"
BENCH_MICRO_OUT="$BENCH_OUT/micro.txt"
BENCH_MICRO_BIN="$XDCR_BUILD_DIR/bench/xdcr-bench-micro"

meta() { printf '%s\t%s\n' "$1" "$2" >>"$BENCH_META"; }

# ---- build ---------------------------------------------------------------------------------------

bench_build() {
    local log="$XDCR_BUILD_DIR/bench-build.log" libs
    mkdir -p "$XDCR_BUILD_DIR"
    echo "# building (Release, no sanitizers) into $XDCR_BUILD_DIR; log $log" >&2
    cmake -S "$ROOT" -B "$XDCR_BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DXDCR_SANITIZE=OFF \
        -DXDCR_FUZZ=OFF -DXDCR_BUILD_TESTS=OFF >"$log" 2>&1 ||
        { tail -n 30 "$log" >&2; echo "bench/run.sh: cmake configure failed" >&2; exit 1; }
    cmake --build "$XDCR_BUILD_DIR" -j "$(nproc)" --target xdcr xdcr-forwarder >>"$log" 2>&1 ||
        { tail -n 30 "$log" >&2; echo "bench/run.sh: build of xdcr and xdcr-forwarder failed" >&2; exit 1; }
    # the consumer may not build yet: the native side runs anyway
    if ! cmake --build "$XDCR_BUILD_DIR" -j "$(nproc)" --target xdcr-consumer >>"$log" 2>&1; then
        echo "# xdcr-consumer did not build (see $log): the xdcr side will be skipped" >&2
    fi
    # micro-benchmarks: the bench/ target when the project includes bench/, else compiled here
    if cmake --build "$XDCR_BUILD_DIR" --target help 2>/dev/null | grep -q 'xdcr-bench-micro'; then
        cmake --build "$XDCR_BUILD_DIR" -j "$(nproc)" --target xdcr-bench-micro >>"$log" 2>&1 ||
            echo "# xdcr-bench-micro did not build (see $log)" >&2
    else
        cmake --build "$XDCR_BUILD_DIR" -j "$(nproc)" --target xdcr_common xdcr_forwarder_core \
            >>"$log" 2>&1 || true
        local defs=() incs=(-I"$ROOT/include" -I"$ROOT/forwarder")
        libs=("$XDCR_BUILD_DIR/forwarder/libxdcr_forwarder_core.a")
        if [[ -f "$ROOT/consumer/sql_build.h" ]] &&
            cmake --build "$XDCR_BUILD_DIR" --target xdcr_consumer_core >>"$log" 2>&1; then
            defs+=(-DBENCH_HAVE_SQL_BUILD=1)
            incs+=(-I"$ROOT/consumer")
            libs+=("$XDCR_BUILD_DIR/consumer/libxdcr_consumer_core.a")
        fi
        libs+=("$XDCR_BUILD_DIR/common/libxdcr_common.a")
        mkdir -p "$XDCR_BUILD_DIR/bench"
        # shellcheck disable=SC2046
        cc -std=c11 -O2 -DNDEBUG -D_GNU_SOURCE -Wall -Wextra "${defs[@]}" "${incs[@]}" \
            "$BENCH_DIR/micro.c" "${libs[@]}" $(pkg-config --libs jansson) -lpthread \
            -o "$BENCH_MICRO_BIN" >>"$log" 2>&1 ||
            echo "# the micro-benchmarks did not build (see $log)" >&2
    fi
}

if ((BUILD)); then
    bench_build
fi
mkdir -p "$BENCH_OUT"
: >"$BENCH_RAW"
: >"$BENCH_META"
: >"$BENCH_CMDS"
: >"$BENCH_FINDINGS"

# ---- micro-benchmarks (no services) --------------------------------------------------------------

if ((MICRO)); then
    if [[ -x "$BENCH_MICRO_BIN" ]]; then
        echo "# micro-benchmarks" >&2
        micro_args=()
        ((QUICK == 0)) || micro_args=(--quick)
        timeout -k 5 600 "$BENCH_MICRO_BIN" "${micro_args[@]}" >"$BENCH_MICRO_OUT" ||
            echo "micro-benchmarks failed" >>"$BENCH_FINDINGS"
        cat "$BENCH_MICRO_OUT" >&2
    else
        echo "micro-benchmarks not built ($BENCH_MICRO_BIN)" >>"$BENCH_FINDINGS"
    fi
fi

# ---- clusters, workloads -----------------------------------------------------------------------

# shellcheck source=../tests/support/harness.sh
source "$ROOT/tests/support/harness.sh"
for f in common clusters workloads native xdcr runner; do
    # shellcheck disable=SC1090
    source "$BENCH_DIR/lib/$f.sh"
done

h_init
H_QUIET=1 bench_clusters_start

settings_sql="SELECT name || ' = ' || current_setting(name) FROM pg_settings
  WHERE source NOT IN ('default', 'override', 'client', 'session')
    AND name NOT IN ('port', 'unix_socket_directories', 'config_file', 'data_directory',
                     'hba_file', 'ident_file', 'application_name', 'client_encoding',
                     'DateStyle', 'TimeZone', 'lc_messages', 'lc_monetary', 'lc_numeric',
                     'lc_time', 'default_text_search_config', 'log_timezone', 'transaction_deferrable',
                     'transaction_isolation', 'transaction_read_only')
  ORDER BY name"
b_sql src "$settings_sql" >"$BENCH_OUT/settings.txt"
h_assert_eq "$(cat "$BENCH_OUT/settings.txt")" "$(b_sql dst "$settings_sql")" \
    "src and dst run with identical settings"
h_assert_eq "on" "$(b_sql dst "SHOW fsync")" "fsync is on"

meta command "$BENCH_CMDLINE"
meta scale "$BENCH_SCALE"
meta reps "$REPS"
meta date "$(date -u '+%Y-%m-%d %H:%M UTC')"
meta commit "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(
    [[ -z "$(git -C "$ROOT" status --porcelain 2>/dev/null | head -n 1)" ]] || echo ' (with uncommitted changes)')"
meta nproc "$(nproc)"
meta memory "$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
meta cpu "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
meta kernel "$(uname -sr)"
meta postgres "$(b_sql src "SELECT version()")"
meta build "cmake -S . -B build/bench -DCMAKE_BUILD_TYPE=Release -DXDCR_SANITIZE=OFF -DXDCR_BUILD_TESTS=OFF; cmake --build build/bench"
for w in W1 W2 W3; do
    meta "desc_$w" "$(bench_workload_desc "$w")"
done
meta results_dir "$BENCH_OUT"
meta load_start "$(cut -d' ' -f1-3 /proc/loadavg)"

bench_workload_prepare

IFS=, read -r -a W_LIST <<<"$WORKLOADS"
IFS=, read -r -a S_LIST <<<"$SYSTEMS"
IFS=, read -r -a M_LIST <<<"$MODES"
S_RUN=()
for s in "${S_LIST[@]}"; do
    case "$s" in
    native) S_RUN+=(native) ;;
    xdcr)
        if why=$(xdcr_available); then
            S_RUN+=(xdcr)
        else
            b_finding "xdcr side skipped: $why"
        fi
        ;;
    *)
        echo "bench/run.sh: unknown system $s" >&2
        exit 2
        ;;
    esac
done

for w in "${W_LIST[@]}"; do
    [[ "$w" =~ ^W[123]$ ]] || h_fail "unknown workload $w"
    for m in "${M_LIST[@]}"; do
        [[ "$m" == e2e || "$m" == catchup || "$m" == replay ]] || h_fail "unknown mode $m"
        for ((rep = 1; rep <= REPS; rep++)); do
            for s in "${S_RUN[@]}"; do
                if [[ "$m" == replay ]]; then
                    # xdcr only: its apply engine on a recorded stream, no broker
                    [[ "$s" != xdcr ]] || xdcr_replay_run "$w" "$rep"
                else
                    bench_run_one "$w" "$s" "$m" "$rep"
                fi
            done
        done
    done
done

if ((CEILINGS)); then
    for ((rep = 1; rep <= REPS; rep++)); do
        bench_ceiling_decode "$rep"
        bench_ceiling_copy "$rep"
    done
fi
bench_drop_replication
meta load_end "$(cut -d' ' -f1-3 /proc/loadavg)"

# ---- report ------------------------------------------------------------------------------------

/usr/bin/python3 "$BENCH_DIR/lib/report.py" --dir "$BENCH_OUT" --results "$RESULTS" ||
    h_fail "the report could not be written"
h_pass "report written to ${RESULTS#"$ROOT"/} (raw data in ${BENCH_OUT#"$ROOT"/})"
h_finish
