# shellcheck shell=bash
#
# harness.sh - the integration test harness, sourced by tests/integration/*.sh (and by
# scripts/dev-stack.sh): throwaway PostgreSQL 15 clusters, the dev broker, background daemons,
# bounded waits, assertions, and a teardown that leaves no process and no directory behind,
# also when a test fails, is interrupted, or is killed with SIGKILL (a watchdog cleans up).
#
# A test script:
#   source "$XDCR_SOURCE_DIR/tests/support/harness.sh"
#   h_init                                  # temp dir, traps, watchdog
#   h_pg_start east                         # prints the conninfo
#   h_pg_start west --ssl                   # TLS only, verify-full with the test CA
#   h_broker_start --brokers 3 --topic xdcr.east.changes:1
#   h_daemon_start fwd "$XDCR_BUILD_DIR/forwarder/xdcr-forwarder" --config ...
#   h_wait_for 30 "row arrives in west" h_psql west "select 1 from t where id = 1"
#   h_assert_eq 1 "$(h_psql west 'select count(*) from t')" "one row in west"
#   h_finish                                # summary line, exit status
#
# All state lives in files under $H_DIR, so helpers also work inside $(...) subshells and the
# watchdog can clean up from the files alone. Every wait is bounded. Works with `set -euo
# pipefail` in the calling script. h_fail ends the test at once (also from a subshell); the
# EXIT trap then stops everything and prints "N passed, M failed". Do not set traps for EXIT,
# INT, TERM, HUP or USR1 after h_init. h_wait_for and h_check take a simple command: wrap
# pipelines in `bash -c`. Environment: XDCR_BUILD_DIR, XDCR_SOURCE_DIR, TMPDIR,
# H_PG_BIN (PostgreSQL binaries), H_PG_OS_USER (unprivileged user for PostgreSQL when run as
# root, default xdcrtest), H_STOP_TIMEOUT_S (daemon stop grace, default 10).

if [[ -n "${H__SOURCED:-}" ]]; then
    return 0
fi
H__SOURCED=1

H_LIB="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
: "${XDCR_SOURCE_DIR:=$(cd "$(dirname "$H_LIB")/../.." && pwd)}"
: "${XDCR_BUILD_DIR:=$XDCR_SOURCE_DIR/build}"
: "${H_PG_BIN:=/usr/lib/postgresql/15/bin}"
: "${H_PG_OS_USER:=xdcrtest}"
: "${H_STOP_TIMEOUT_S:=10}"
export XDCR_SOURCE_DIR XDCR_BUILD_DIR H_PG_BIN H_PG_OS_USER

H_DIR=""           # this test's state directory (set by h_init or h_attach)
H_OWNED=0          # 1 when h_init created H_DIR: teardown removes it
H_PASS_COUNT=0
H_FAIL_COUNT=0
H_OUT=""           # output of the last h_wait_for / h_check
H_LAST_EXIT=""     # exit status of the last daemon stopped or waited for
H__CLEANED=0
H__SUMMARY_DONE=0
declare -gA H__CHILD_PIDS=() # daemon name -> pid, for daemons started by this shell (to reap)

# ---------------------------------------------------------------------------------------------
# Results

# Progress notes on stderr; H_QUIET=1 silences them.
h__note() {
    [[ "${H_QUIET:-0}" == 1 ]] || echo "# $*" >&2
}

h_pass() {
    H_PASS_COUNT=$((H_PASS_COUNT + 1))
    echo "ok $H_PASS_COUNT - $*"
}

# Record a failure and end the test (the EXIT trap tears everything down). Inside a $(...)
# subshell it signals the test shell, so the failure is never lost.
h_fail() {
    if [[ "$BASHPID" != "$$" ]]; then
        # Our stdout may be captured by $(...): tell the user on stderr.
        echo "FAIL - $*" >&2
        if [[ "$H_OWNED" == 1 ]]; then
            kill -USR1 "$$" 2>/dev/null || true
        fi
        exit 1
    fi
    echo "FAIL - $*"
    H_FAIL_COUNT=$((H_FAIL_COUNT + 1))
    exit 1
}

# h_assert_eq EXPECTED ACTUAL DESCRIPTION
h_assert_eq() {
    if [[ "$1" == "$2" ]]; then
        h_pass "$3"
    else
        h_fail "$3: expected '$1', got '$2'"
    fi
}

# h_assert_contains HAYSTACK NEEDLE DESCRIPTION
h_assert_contains() {
    if [[ "$1" == *"$2"* ]]; then
        h_pass "$3"
    else
        h_fail "$3: '$2' not found in: $1"
    fi
}

# h_check DESCRIPTION CMD... : passes when CMD exits 0; its output is kept in H_OUT.
h_check() {
    local desc=$1 rc=0
    shift
    H_OUT=$("$@" 2>&1) || rc=$?
    if ((rc == 0)); then
        h_pass "$desc"
    else
        h_fail "$desc: command failed with status $rc: $*: $H_OUT"
    fi
}

# h_check_fails DESCRIPTION CMD... : passes when CMD exits non-zero; its output is in H_OUT.
h_check_fails() {
    local desc=$1 rc=0
    shift
    H_OUT=$("$@" 2>&1) || rc=$?
    if ((rc != 0)); then
        h_pass "$desc"
    else
        h_fail "$desc: command succeeded but should have failed: $*: $H_OUT"
    fi
}

h__summary() {
    ((H__SUMMARY_DONE == 0)) || return 0
    H__SUMMARY_DONE=1
    echo "$H_PASS_COUNT passed, $H_FAIL_COUNT failed"
    if [[ -n "${H_RESULT_FILE:-}" ]]; then
        echo "$H_PASS_COUNT $H_FAIL_COUNT" >"$H_RESULT_FILE" || true
    fi
}

# End the test: tear down, print the summary, exit 0 only if something passed and nothing failed.
h_finish() {
    exit 0
}

# ---------------------------------------------------------------------------------------------
# Time, processes

h__now_ms() {
    local t=${EPOCHREALTIME//[!0-9]/}
    echo $((10#$t / 1000))
}

# Start time of a process (clock ticks since boot), to tell it from a later one with its pid.
h__starttime() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    # shellcheck disable=SC2086
    set -- $stat
    echo "${20}"
}

# h__alive PID [STARTTIME]: running (not a zombie) and, if given, the same process.
h__alive() {
    local stat state
    [[ "$1" =~ ^[0-9]+$ ]] || return 1
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    state=${stat%% *}
    [[ "$state" != Z && "$state" != X ]] || return 1
    if [[ -n "${2:-}" ]]; then
        [[ "$(h__starttime "$1")" == "$2" ]] || return 1
    fi
    return 0
}

# h__wait_gone PID STARTTIME TIMEOUT_S: wait until the process is gone; 1 on timeout.
h__wait_gone() {
    local deadline=$(($(h__now_ms) + $3 * 1000))
    while h__alive "$1" "$2"; do
        (($(h__now_ms) < deadline)) || return 1
        sleep 0.05
    done
    return 0
}

# Processes that belong to DIR: their command line or working directory is in it. PostgreSQL
# backends run in their data directory, daemons get paths in it as arguments.
h__find_procs() {
    local dir=$1 p cmd cwd wd_pid=""
    [[ -n "$dir" && "$dir" == /* ]] || return 0
    wd_pid=$(cat "$dir/watchdog.pid" 2>/dev/null || true)
    {
        grep -lsF -- "$dir" /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3
        find /proc/[0-9]*/cwd -maxdepth 0 \( -lname "$dir" -o -lname "$dir/*" \) 2>/dev/null |
            cut -d/ -f3
    } | sort -un | while read -r p; do
        [[ "$p" != "$$" && "$p" != "$BASHPID" && "$p" != "$wd_pid" ]] || continue
        h__alive "$p" || continue
        # Re-check: the grep and find above matched themselves and are gone by now.
        cmd=$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null || true)
        cwd=$(readlink "/proc/$p/cwd" 2>/dev/null || true)
        if [[ "$cmd" == *"$dir"* || "$cwd" == "$dir" || "$cwd" == "$dir/"* ]]; then
            echo "$p"
        fi
    done || true
}

h__describe_procs() {
    local p
    for p in "$@"; do
        echo "  pid $p: $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null || echo '?')"
    done
}

# ---------------------------------------------------------------------------------------------
# Lifecycle: h_init (tests) or h_attach (persistent state, e.g. the dev stack)

h_init() {
    local tries
    if [[ -n "$H_DIR" ]]; then
        echo "FAIL - h_init called twice" >&2
        exit 1
    fi
    umask 022
    unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGSERVICE PGSSLMODE PGPASSWORD \
        PGPASSFILE PGOPTIONS PGSSLROOTCERT PGSSLCERT PGSSLKEY PGTARGETSESSIONATTRS
    H_DIR=$(mktemp -d "${TMPDIR:-/tmp}/xdcr-test.XXXXXX") || {
        echo "FAIL - could not create a temp dir under ${TMPDIR:-/tmp}" >&2
        exit 1
    }
    chmod 755 "$H_DIR"
    H_OWNED=1
    mkdir -p "$H_DIR/daemons" "$H_DIR/logs" "$H_DIR/pg"
    trap 'h__on_exit' EXIT
    trap 'h__on_signal INT 130' INT
    trap 'h__on_signal TERM 143' TERM
    trap 'h__on_signal HUP 129' HUP
    trap 'h__on_subshell_fail' USR1
    # The watchdog runs in its own session and cleans up if this shell dies, even by SIGKILL.
    setsid bash -c 'source "$1" && h__watchdog "$2" "$3" "$4"' xdcr-test-watchdog \
        "$H_LIB" "$$" "$(h__starttime $$)" "$H_DIR" </dev/null >/dev/null 2>&1 &
    for ((tries = 0; tries < 100; tries++)); do
        [[ -s "$H_DIR/watchdog.pid" ]] && break
        sleep 0.05
    done
    [[ -s "$H_DIR/watchdog.pid" ]] || h_fail "the watchdog did not start"
    h__note "test dir $H_DIR"
}

# Use DIR (created if missing) for state without traps or watchdog: nothing is cleaned up
# automatically. For scripts/dev-stack.sh.
h_attach() {
    H_DIR=$1
    H_OWNED=0
    umask 022
    mkdir -p "$H_DIR/daemons" "$H_DIR/logs" "$H_DIR/pg" || return 1
    chmod 755 "$H_DIR"
    H_DIR=$(cd "$H_DIR" && pwd)
}

h__on_signal() {
    trap '' INT TERM HUP
    echo "FAIL - interrupted by SIG$1"
    H_FAIL_COUNT=$((H_FAIL_COUNT + 1))
    exit "$2"
}

h__on_subshell_fail() {
    H_FAIL_COUNT=$((H_FAIL_COUNT + 1))
    exit 1
}

h__on_exit() {
    local rc=$?
    trap '' INT TERM HUP USR1
    if ((rc != 0 && H_FAIL_COUNT == 0)); then
        echo "FAIL - test script exited with status $rc"
        H_FAIL_COUNT=1
    fi
    if ((rc == 0 && H_FAIL_COUNT == 0 && H_PASS_COUNT == 0)); then
        echo "FAIL - the test asserted nothing"
        H_FAIL_COUNT=1
    fi
    h_cleanup
    h__summary
    if ((H_FAIL_COUNT > 0 && rc == 0)); then
        rc=1
    fi
    exit "$rc"
}

# Stop everything this test started, check nothing is left, print logs if the test failed,
# remove the temp dir. Idempotent; called by the EXIT trap.
h_cleanup() {
    local f name left=()
    [[ -n "$H_DIR" && "$H_OWNED" == 1 && "$H__CLEANED" == 0 ]] || return 0
    H__CLEANED=1
    for f in "$H_DIR"/daemons/*.pid; do
        [[ -e "$f" ]] || continue
        name=$(basename "$f" .pid)
        h_daemon_stop "$name" >/dev/null
    done
    h__stop_all_pg "$H_DIR" immediate
    mapfile -t left < <(h__find_procs "$H_DIR")
    if ((${#left[@]} > 0)); then
        echo "FAIL - processes left behind by the test (killed now):"
        h__describe_procs "${left[@]}"
        H_FAIL_COUNT=$((H_FAIL_COUNT + 1))
        kill -KILL "${left[@]}" 2>/dev/null || true
        sleep 0.5
    fi
    if ((H_FAIL_COUNT > 0)); then
        h__dump_logs
    fi
    f=$(cat "$H_DIR/watchdog.pid" 2>/dev/null || true)
    rm -rf "$H_DIR"
    if [[ -n "$f" ]]; then
        kill -TERM "$f" 2>/dev/null || true
    fi
    if [[ -e "$H_DIR" ]]; then
        echo "FAIL - could not remove $H_DIR"
        H_FAIL_COUNT=$((H_FAIL_COUNT + 1))
    fi
}

h__dump_logs() {
    local f
    for f in "$H_DIR"/logs/*.log "$H_DIR"/pg/*/postgresql.log; do
        [[ -s "$f" ]] || continue
        echo "----- log ${f#"$H_DIR"/} (last 100 lines) -----" >&2
        tail -n 100 "$f" >&2 || true
    done
}

# Teardown from the files alone (the watchdog, `dev-stack.sh down`): stop daemons, stop every
# PostgreSQL (PG_MODE, default immediate), kill anything else running in DIR.
h__teardown() {
    local dir=$1 mode=${2:-immediate} f left=()
    for f in "$dir"/daemons/*.pid; do
        [[ -e "$f" ]] || continue
        h__stop_pidfile "$f" TERM
    done
    h__stop_all_pg "$dir" "$mode"
    mapfile -t left < <(h__find_procs "$dir")
    if ((${#left[@]} > 0)); then
        kill -KILL "${left[@]}" 2>/dev/null || true
        sleep 0.5
    fi
}

h__watchdog() {
    local parent=$1 parent_start=$2 dir=$3 waited=0 max=${H_WATCHDOG_MAX_S:-43200}
    echo "$BASHPID" >"$dir/watchdog.pid"
    trap '' INT HUP
    trap 'exit 0' TERM
    while ((waited < max)); do
        [[ -d "$dir" ]] || exit 0
        h__alive "$parent" "$parent_start" || break
        # In the background, so the TERM trap runs at once instead of after the sleep.
        sleep 1 &
        wait $! || true
        waited=$((waited + 1))
    done
    [[ -d "$dir" ]] || exit 0
    H_DIR=$dir
    h__teardown "$dir" immediate
    rm -rf "$dir"
}

# ---------------------------------------------------------------------------------------------
# Waiting

# h_wait_for TIMEOUT_S DESCRIPTION CMD... : run CMD every 0.2 s until it exits 0 (its output is
# then in H_OUT); on timeout fail with the description and CMD's last output. External commands
# are bounded by the remaining time; shell functions must bound themselves.
h_wait_for() {
    local timeout_s=$1 desc=$2 deadline left_s rc
    shift 2
    deadline=$(($(h__now_ms) + timeout_s * 1000))
    while :; do
        rc=0
        left_s=$(((deadline - $(h__now_ms) + 999) / 1000))
        ((left_s > 0)) || left_s=1
        if [[ "$(type -t "$1")" == file ]]; then
            H_OUT=$(timeout -k 2 "$left_s" "$@" 2>&1) || rc=$?
        else
            H_OUT=$("$@" 2>&1) || rc=$?
        fi
        ((rc == 0)) && return 0
        if (($(h__now_ms) >= deadline)); then
            h_fail "timed out after ${timeout_s}s waiting for $desc (last status $rc): $H_OUT"
        fi
        sleep 0.2
    done
}

# ---------------------------------------------------------------------------------------------
# Daemons: background processes with a log in $H_DIR/logs/NAME.log

h__check_name() {
    [[ "$1" =~ ^[A-Za-z0-9_.-]+$ ]] || h_fail "invalid name '$1' (use letters, digits, . _ -)"
}

h__require_dir() {
    [[ -n "$H_DIR" && -d "$H_DIR" ]] || h_fail "call h_init first"
}

# h_daemon_start NAME CMD... : start CMD in the background (own session, stdin /dev/null,
# stdout+stderr appended to the log).
h_daemon_start() {
    local name=$1 pid log
    shift
    h__require_dir
    h__check_name "$name"
    (($# > 0)) || h_fail "h_daemon_start $name: no command"
    if h_daemon_alive "$name"; then
        h_fail "daemon $name is already running"
    fi
    mkdir -p "$H_DIR/daemons" "$H_DIR/logs"
    log="$H_DIR/logs/$name.log"
    rm -f "$H_DIR/daemons/$name.exit"
    if [[ $- == *m* ]]; then
        "$@" </dev/null >>"$log" 2>&1 &
    else
        # Without job control the child is no process group leader, so setsid does not fork
        # and $! is the daemon itself.
        setsid "$@" </dev/null >>"$log" 2>&1 &
    fi
    pid=$!
    H__CHILD_PIDS[$name]=$pid
    echo "$pid $(h__starttime "$pid" || echo 0)" >"$H_DIR/daemons/$name.pid"
    h__note "daemon $name started: pid $pid, log $log"
}

# Print the pid of a running daemon; status 1 if it is not running.
h_daemon_pid() {
    local pid start
    [[ -n "$H_DIR" ]] || return 1
    read -r pid start 2>/dev/null <"$H_DIR/daemons/$1.pid" || return 1
    h__alive "$pid" "$start" || return 1
    echo "$pid"
}

h_daemon_alive() {
    h_daemon_pid "$1" >/dev/null
}

h_daemon_log() {
    echo "$H_DIR/logs/$1.log"
}

# Send a signal without waiting (e.g. STOP / CONT).
h_daemon_signal() {
    local pid
    pid=$(h_daemon_pid "$1") || h_fail "daemon $1 is not running"
    kill -"$2" "$pid" || h_fail "could not send SIG$2 to daemon $1"
}

# Reap a daemon that is gone: its exit status into H_LAST_EXIT and NAME.exit ("" if unknown).
h__reap() {
    local name=$1 pid=$2 st=""
    if [[ "${H__CHILD_PIDS[$name]:-}" == "$pid" ]]; then
        st=0
        wait "$pid" 2>/dev/null || st=$?
        unset "H__CHILD_PIDS[$name]"
    fi
    H_LAST_EXIT=$st
    echo "$st" >"$H_DIR/daemons/$name.exit"
    rm -f "$H_DIR/daemons/$name.pid"
}

# h__stop_pidfile FILE SIGNAL: signal, wait H_STOP_TIMEOUT_S, then SIGKILL.
h__stop_pidfile() {
    local f=$1 sig=$2 pid start
    read -r pid start 2>/dev/null <"$f" || return 0
    if h__alive "$pid" "$start"; then
        kill -"$sig" "$pid" 2>/dev/null || true
        if ! h__wait_gone "$pid" "$start" "$H_STOP_TIMEOUT_S"; then
            echo "# $(basename "$f" .pid) (pid $pid) ignored SIG$sig for ${H_STOP_TIMEOUT_S}s: SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
            h__wait_gone "$pid" "$start" 5 || true
        fi
    fi
    rm -f "$f"
}

# h_daemon_stop NAME [SIGNAL] : signal (default TERM), wait up to H_STOP_TIMEOUT_S, then SIGKILL.
# The exit status is left in H_LAST_EXIT (empty if unknown) and printed.
h_daemon_stop() {
    local name=$1 sig=${2:-TERM} pid start
    h__require_dir
    H_LAST_EXIT=""
    if read -r pid start 2>/dev/null <"$H_DIR/daemons/$name.pid"; then
        if h__alive "$pid" "$start"; then
            kill -"$sig" "$pid" 2>/dev/null || true
            if ! h__wait_gone "$pid" "$start" "$H_STOP_TIMEOUT_S"; then
                h__note "daemon $name (pid $pid) ignored SIG$sig for ${H_STOP_TIMEOUT_S}s: SIGKILL"
                kill -KILL "$pid" 2>/dev/null || true
                h__wait_gone "$pid" "$start" 5 || true
            fi
        fi
        h__reap "$name" "$pid"
    elif [[ -f "$H_DIR/daemons/$name.exit" ]]; then
        H_LAST_EXIT=$(cat "$H_DIR/daemons/$name.exit")
    fi
    echo "$H_LAST_EXIT"
}

h_daemon_kill() {
    h_daemon_stop "$1" KILL
}

# h_daemon_wait NAME TIMEOUT_S : wait for the daemon to exit by itself; prints its exit status
# (also in H_LAST_EXIT). Fails the test on timeout.
h_daemon_wait() {
    local name=$1 pid start
    h__require_dir
    if read -r pid start 2>/dev/null <"$H_DIR/daemons/$name.pid"; then
        h__wait_gone "$pid" "$start" "$2" || h_fail "daemon $name did not exit within $2s"
        h__reap "$name" "$pid"
    elif [[ -f "$H_DIR/daemons/$name.exit" ]]; then
        H_LAST_EXIT=$(cat "$H_DIR/daemons/$name.exit")
    else
        h_fail "unknown daemon $name"
    fi
    echo "$H_LAST_EXIT"
}

# ---------------------------------------------------------------------------------------------
# The dev broker (xdcr dev-broker, librdkafka's mock cluster)

h__xdcr() {
    local bin="$XDCR_BUILD_DIR/cli/xdcr"
    [[ -x "$bin" ]] || h_fail "$bin not found: build first (XDCR_BUILD_DIR=$XDCR_BUILD_DIR)"
    echo "$bin"
}

# h_broker_start [--brokers N] [--topic NAME:PARTITIONS]... : start the dev broker as daemon
# "dev-broker"; exports H_BROKER_BOOTSTRAP and XDCR_BROKER_CONTROL (for xdcr broker-ctl).
h_broker_start() {
    local bin bdir deadline
    h__require_dir
    bin=$(h__xdcr)
    bdir="$H_DIR/broker"
    mkdir -p "$bdir"
    rm -f "$bdir/bootstrap"
    h_daemon_start dev-broker "$bin" dev-broker --bootstrap-file "$bdir/bootstrap" \
        --control "$bdir/control.sock" "$@"
    deadline=$(($(h__now_ms) + 30000))
    while [[ ! -s "$bdir/bootstrap" ]]; do
        if ! h_daemon_alive dev-broker; then
            h_fail "dev broker exited during startup: $(tail -n 20 "$H_DIR/logs/dev-broker.log" 2>/dev/null)"
        fi
        (($(h__now_ms) < deadline)) || h_fail "dev broker did not start within 30s"
        sleep 0.05
    done
    H_BROKER_BOOTSTRAP=$(cat "$bdir/bootstrap")
    XDCR_BROKER_CONTROL="$bdir/control.sock"
    export H_BROKER_BOOTSTRAP XDCR_BROKER_CONTROL
    h__note "dev broker ready: $H_BROKER_BOOTSTRAP"
}

h_broker_bootstrap() {
    cat "$H_DIR/broker/bootstrap"
}

# h_broker_ctl CMD ARGS... : one control command; prints the reply, status 0 on "ok".
h_broker_ctl() {
    local bin
    bin=$(h__xdcr)
    "$bin" broker-ctl --control "$H_DIR/broker/control.sock" "$@"
}

# Stop the broker; its exit status (0 = clean shutdown, no leaks under ASan) in H_LAST_EXIT.
h_broker_stop() {
    h_daemon_stop dev-broker "${1:-TERM}"
}

# ---------------------------------------------------------------------------------------------
# PostgreSQL

# Run a command as the PostgreSQL OS user: an unprivileged user when we are root.
h__as_pg() {
    if ((EUID == 0)); then
        (cd / && runuser -u "$H_PG_OS_USER" -- "$@")
    else
        "$@"
    fi
}

h__ensure_pg_user() {
    ((EUID == 0)) || return 0
    id -u "$H_PG_OS_USER" >/dev/null 2>&1 && return 0
    useradd --system --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin "$H_PG_OS_USER" >/dev/null 2>&1 || true
    # Another test may have created it at the same moment.
    id -u "$H_PG_OS_USER" >/dev/null 2>&1 ||
        h_fail "could not create the system user $H_PG_OS_USER for PostgreSQL (useradd)"
}

# A port that nothing listens on, below the ephemeral range (where the broker's ports are).
h__free_port() {
    local lo=15000 hi=32000 eph_lo port i
    read -r eph_lo _ 2>/dev/null </proc/sys/net/ipv4/ip_local_port_range || eph_lo=32768
    if ((eph_lo <= lo + 1000)); then
        lo=10000
        hi=60000
    elif ((eph_lo - 1 < hi)); then
        hi=$((eph_lo - 1))
    fi
    for ((i = 0; i < 50; i++)); do
        port=$((lo + (RANDOM * 32768 + RANDOM) % (hi - lo)))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    return 1
}

h__pg_dir() {
    [[ -n "$H_DIR" && -d "$H_DIR/pg/$1" ]] || h_fail "no PostgreSQL cluster named '$1'"
    echo "$H_DIR/pg/$1"
}

# The test CA (once per $H_DIR) and a server certificate for 127.0.0.1 and localhost.
h__ssl_server_cert() {
    local dir=$1 ca="$H_DIR/ssl" out
    if [[ ! -s "$ca/ca.crt" ]]; then
        mkdir -p "$ca"
        out=$(openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
            -keyout "$ca/ca.key" -out "$ca/ca.crt" -days 3 -subj "/CN=xdcr test CA" \
            -addext "basicConstraints=critical,CA:TRUE" \
            -addext "keyUsage=critical,keyCertSign,cRLSign" 2>&1) ||
            h_fail "could not create the test CA: $out"
        chmod 644 "$ca/ca.crt"
    fi
    printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1" "basicConstraints=CA:FALSE" \
        "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" \
        >"$dir/server.ext"
    out=$(openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$dir/server.key" -out "$dir/server.csr" -subj "/CN=localhost" 2>&1 &&
        openssl x509 -req -in "$dir/server.csr" -CA "$ca/ca.crt" -CAkey "$ca/ca.key" \
            -set_serial "0x$(openssl rand -hex 8)" -days 3 -extfile "$dir/server.ext" \
            -out "$dir/server.crt" 2>&1) || h_fail "could not create the server certificate: $out"
    chmod 600 "$dir/server.key"
    H_PG_SSL_ROOTCERT="$ca/ca.crt"
    export H_PG_SSL_ROOTCERT
}

# Start the cluster in DIR on its configured port; status 1 (log in $dir/start.out) on failure.
h__pg_ctl_start() {
    local dir=$1
    h__as_pg "$H_PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/postgresql.log" -w -t 60 start \
        >"$dir/start.out" 2>&1
}

# h_pg_start NAME [--ssl] [--port P] [--set NAME=VALUE]... : initdb and start a throwaway
# cluster on 127.0.0.1 (free port), superuser "postgres", trust auth. With --ssl, TCP accepts
# only TLS (hostssl) and the conninfo uses sslmode=verify-full with the test CA. Prints the
# conninfo and exports H_PG_CONNINFO_<NAME> (upper case, - as _).
h_pg_start() {
    local name=${1:-} ssl=0 port="" fixed_port sets=() dir data conninfo attempt out var s
    shift || h_fail "h_pg_start: missing name"
    h__require_dir
    h__check_name "$name"
    while (($# > 0)); do
        case "$1" in
        --ssl) ssl=1 ;;
        --port)
            port=$2
            shift
            ;;
        --set)
            sets+=("$2")
            shift
            ;;
        *) h_fail "h_pg_start: unknown option $1" ;;
        esac
        shift
    done
    dir="$H_DIR/pg/$name"
    data="$dir/data"
    [[ ! -e "$dir" ]] || h_fail "PostgreSQL cluster $name already exists"
    mkdir -p "$dir/sock"
    chmod 755 "$H_DIR/pg"
    if ((${#dir} + 25 > 107)); then
        h_fail "path $dir is too long for a unix socket: use a shorter TMPDIR"
    fi
    if ((ssl)); then
        h__ssl_server_cert "$dir"
    fi
    if ((EUID == 0)); then
        h__ensure_pg_user
        chown -R "$H_PG_OS_USER:" "$dir"
        h__as_pg test -w "$dir" ||
            h_fail "user $H_PG_OS_USER cannot write to $dir: make its parents traversable (o+x) or set TMPDIR"
    fi
    out=$(h__as_pg "$H_PG_BIN/initdb" -D "$data" -U postgres -A trust -E UTF8 --locale=C -N 2>&1) ||
        h_fail "initdb for $name failed: $out"
    echo "include = 'xdcr_test.conf'" >>"$data/postgresql.conf"
    {
        echo "local all all trust"
        echo "local replication all trust"
        if ((ssl)); then
            echo "hostssl all all 127.0.0.1/32 trust"
            echo "hostssl replication all 127.0.0.1/32 trust"
        else
            echo "host all all 127.0.0.1/32 trust"
            echo "host replication all 127.0.0.1/32 trust"
        fi
    } >"$data/pg_hba.conf"
    fixed_port=$port
    for ((attempt = 1; attempt <= 10; attempt++)); do
        if [[ -z "$fixed_port" ]]; then
            port=$(h__free_port) || h_fail "no free TCP port found"
        fi
        {
            echo "listen_addresses = '127.0.0.1'"
            echo "port = $port"
            echo "unix_socket_directories = '$dir/sock'"
            echo "wal_level = logical"
            echo "track_commit_timestamp = on"
            echo "max_replication_slots = 20"
            echo "max_wal_senders = 20"
            echo "max_worker_processes = 20"
            echo "max_connections = 100"
            echo "shared_buffers = 32MB"
            echo "fsync = on"
            echo "log_line_prefix = '%m [%p] %q%u@%d '"
            if ((ssl)); then
                echo "ssl = on"
                echo "ssl_cert_file = '$dir/server.crt'"
                echo "ssl_key_file = '$dir/server.key'"
            fi
            for s in "${sets[@]}"; do
                echo "${s%%=*} = '${s#*=}'"
            done
        } >"$data/xdcr_test.conf"
        if ((EUID == 0)); then
            chown "$H_PG_OS_USER:" "$data/xdcr_test.conf" "$data/pg_hba.conf"
        fi
        if h__pg_ctl_start "$dir"; then
            break
        fi
        if [[ -n "$fixed_port" ]] ||
            ! grep -qsE 'could not (bind|create listen socket)|already in use' \
                "$dir/postgresql.log"; then
            h_fail "PostgreSQL $name did not start: $(cat "$dir/start.out"; tail -n 20 "$dir/postgresql.log" 2>/dev/null)"
        fi
        h__note "port $port of PostgreSQL $name was taken, retrying"
        : >"$dir/postgresql.log"
    done
    h_pg_is_running "$name" || h_fail "PostgreSQL $name did not start (no free port after 10 tries)"
    conninfo="host=127.0.0.1 port=$port user=postgres dbname=postgres connect_timeout=10"
    if ((ssl)); then
        conninfo+=" sslmode=verify-full sslrootcert=$H_PG_SSL_ROOTCERT"
    fi
    echo "$port" >"$dir/port"
    echo "$conninfo" >"$dir/conninfo"
    var="H_PG_CONNINFO_${name^^}"
    var=${var//[-.]/_}
    printf -v "$var" '%s' "$conninfo"
    export "${var?}"
    h__note "PostgreSQL $name ready: $conninfo"
    echo "$conninfo"
}

h_pg_conninfo() {
    local dir
    dir=$(h__pg_dir "$1")
    cat "$dir/conninfo"
}

h_pg_port() {
    local dir
    dir=$(h__pg_dir "$1")
    cat "$dir/port"
}

h_pg_datadir() {
    local dir
    dir=$(h__pg_dir "$1")
    echo "$dir/data"
}

# Print the postmaster pid; status 1 if the cluster is not running.
h_pg_pid() {
    local pid
    [[ -n "$H_DIR" ]] || return 1
    pid=$(head -n 1 "$H_DIR/pg/$1/data/postmaster.pid" 2>/dev/null) || return 1
    h__alive "$pid" || return 1
    echo "$pid"
}

h_pg_is_running() {
    h_pg_pid "$1" >/dev/null
}

# h_psql NAME [SQL...] : each SQL runs as its own -c (reads stdin when none is given).
h_psql() {
    local conninfo args=() s
    conninfo=$(h_pg_conninfo "$1") || return 1
    shift
    for s in "$@"; do
        args+=(-c "$s")
    done
    PGCONNECT_TIMEOUT=10 psql -XAtq -v ON_ERROR_STOP=1 -d "$conninfo" "${args[@]}"
}

# Stop one data directory: pg_ctl stop -m MODE, then SIGKILL the postmaster and its children.
h__pg_stop_data() {
    local data=$1 mode=$2 pid start p
    pid=$(head -n 1 "$data/postmaster.pid" 2>/dev/null) || return 0
    h__alive "$pid" || return 0
    start=$(h__starttime "$pid") || return 0
    h__as_pg "$H_PG_BIN/pg_ctl" -D "$data" -m "$mode" -w -t 30 stop >/dev/null 2>&1 || true
    if h__alive "$pid" "$start"; then
        # Backends run in the data directory: h__find_procs finds them with the postmaster.
        for p in $(h__find_procs "$data"); do
            kill -KILL "$p" 2>/dev/null || true
        done
        kill -KILL "$pid" 2>/dev/null || true
        h__wait_gone "$pid" "$start" 5 || true
    fi
}

h__stop_all_pg() {
    local dir=$1 mode=$2 data
    for data in "$dir"/pg/*/data; do
        [[ -f "$data/postmaster.pid" ]] || continue
        h__pg_stop_data "$data" "$mode"
    done
}

# h_pg_stop NAME [fast|immediate|smart] (default fast).
h_pg_stop() {
    local dir
    dir=$(h__pg_dir "$1")
    h__pg_stop_data "$dir/data" "${2:-fast}"
    ! h_pg_is_running "$1" || h_fail "PostgreSQL $1 did not stop"
}

# h_pg_restart NAME [MODE] : stop (if running) and start again on the same port.
h_pg_restart() {
    local name=$1 dir attempt
    dir=$(h__pg_dir "$name")
    h__pg_stop_data "$dir/data" "${2:-fast}"
    for ((attempt = 1; attempt <= 20; attempt++)); do
        if h__pg_ctl_start "$dir"; then
            h__note "PostgreSQL $name restarted"
            return 0
        fi
        sleep 0.5
    done
    h_fail "PostgreSQL $name did not restart: $(cat "$dir/start.out"; tail -n 20 "$dir/postgresql.log" 2>/dev/null)"
}
