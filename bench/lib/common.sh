# shellcheck shell=bash
#
# common.sh - shared helpers of the benchmark (sourced by bench/run.sh after the test harness):
# clocks, bounded waits that do not end the run, the raw results file, the command log, and the
# per-process CPU and peak-RSS readings from /proc.
#
# State: BENCH_OUT (results directory of this run), BENCH_RAW (raw.tsv: one measurement per
# line), BENCH_CMDS (commands.md: the exact commands, for RESULTS.md), BENCH_FINDINGS.

BENCH_CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)

b_note() { # progress on stderr
    printf '# [%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2
}

b_now() { # wall clock, seconds since the epoch with microseconds
    echo "$EPOCHREALTIME"
}

b_elapsed() { # b_elapsed T0 T1 -> seconds (6 decimals)
    awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f", b - a }'
}

b_rate() { # b_rate ROWS SECONDS -> rows/s (integer), empty when seconds <= 0
    awk -v r="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.0f", r / s }'
}

# b_record WORKLOAD SYSTEM MODE REP METRIC VALUE : one measurement into raw.tsv.
b_record() {
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "$6" >>"$BENCH_RAW"
}

# b_finding TEXT : something RESULTS.md must report (a halt, a mismatch, a timeout).
b_finding() {
    b_note "FINDING: $*"
    printf '%s\n' "$*" >>"$BENCH_FINDINGS"
}

# b_cmd TITLE TEXT : remember an exact command (once per title) for RESULTS.md.
b_cmd() {
    local title=$1 text=$2
    [[ -z "${H_DIR:-}" ]] || text=${text//"$H_DIR"/\$H_DIR}
    if ! grep -qxF "### $title" "$BENCH_CMDS" 2>/dev/null; then
        # shellcheck disable=SC2016 # markdown fences, not expansions
        printf '### %s\n\n```\n%s\n```\n\n' "$title" "$text" >>"$BENCH_CMDS"
    fi
}

# b_wait TIMEOUT_S CMD... : run CMD every 0.1 s (or B_WAIT_EVERY seconds) until it succeeds;
# status 1 on timeout (the run goes on: unlike h_wait_for this never ends the benchmark).
b_wait() {
    local timeout_s=$1 deadline
    shift
    deadline=$(($(h__now_ms) + timeout_s * 1000))
    until "$@" >/dev/null 2>&1; do
        (($(h__now_ms) < deadline)) || return 1
        sleep "${B_WAIT_EVERY:-0.1}"
    done
    return 0
}

# ---- /proc readings ----------------------------------------------------------------------------

# b_proc_cpu PID : utime+stime in seconds (3 decimals); empty when the process is gone.
b_proc_cpu() {
    local stat
    [[ "${1:-}" =~ ^[0-9]+$ ]] || return 0
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
    stat=${stat##*) }
    # shellcheck disable=SC2086
    set -- $stat
    # after "comm)": field 3 is state, so utime (14) and stime (15) are $12 and $13
    awk -v u="${12}" -v s="${13}" -v t="$BENCH_CLK_TCK" 'BEGIN { printf "%.3f", (u + s) / t }'
}

# b_proc_hwm PID : peak resident set size (VmHWM) in kB; empty when gone.
b_proc_hwm() {
    [[ "${1:-}" =~ ^[0-9]+$ ]] || return 0
    awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null || true
}

b_proc_start() { # start time in ticks (tells a pid from a later process with the same pid)
    h__starttime "$1" 2>/dev/null || true
}

# Roles of processes whose CPU and RSS are measured. b_procs_snapshot NAME fills
# BENCH_SNAP_<NAME>[role]="pid start cpu"; b_procs_report charges the difference to a run.
# The role -> pid mapping comes from the function b_role_pids (defined by the system module in
# use): it prints "role pid" lines.
declare -gA BENCH_SNAP0=()

b_procs_snapshot0() {
    local role pid
    BENCH_SNAP0=()
    while read -r role pid; do
        [[ -n "$pid" ]] || continue
        BENCH_SNAP0[$role]="$pid $(b_proc_start "$pid") $(b_proc_cpu "$pid")"
    done < <(b_role_pids)
}

# b_procs_record W S M REP : CPU seconds used since snapshot0 (the whole life of a process that
# started later) and peak RSS per role, recorded as cpu_<role> and rss_kb_<role>.
b_procs_record() {
    local w=$1 s=$2 m=$3 rep=$4 role pid start cpu p0 s0 c0 used hwm
    while read -r role pid; do
        [[ -n "$pid" ]] || continue
        start=$(b_proc_start "$pid")
        cpu=$(b_proc_cpu "$pid")
        hwm=$(b_proc_hwm "$pid")
        [[ -n "$cpu" ]] || continue
        used=$cpu
        if [[ -n "${BENCH_SNAP0[$role]:-}" ]]; then
            read -r p0 s0 c0 <<<"${BENCH_SNAP0[$role]}"
            if [[ "$p0" == "$pid" && "$s0" == "$start" && -n "$c0" ]]; then
                used=$(awk -v a="$c0" -v b="$cpu" 'BEGIN { printf "%.3f", b - a }')
            fi
        fi
        b_record "$w" "$s" "$m" "$rep" "cpu_$role" "$used"
        [[ -z "$hwm" ]] || b_record "$w" "$s" "$m" "$rep" "rss_kb_$role" "$hwm"
    done < <(b_role_pids)
}
