# shellcheck shell=bash
#
# fwd_lib.sh - helpers shared by the forwarder integration tests (test_forwarder_*.sh), sourced
# after tests/support/harness.sh: forwarder configs, reading a topic decoded with `xdcr tail`,
# slot positions, and the stream checks of fwd_check.py.

FWD="$XDCR_BUILD_DIR/forwarder/xdcr-forwarder"
XDCR="$XDCR_BUILD_DIR/cli/xdcr"
FWD_CHECK="$XDCR_SOURCE_DIR/tests/integration/fwd_check.py"
if [[ -x /usr/bin/python3 ]]; then
    PY=/usr/bin/python3
else
    PY=python3
fi

# fwd_conf FILE ORIGIN PGNAME [LINE...] : a forwarder config for the dev broker; extra lines win.
fwd_conf() {
    local file=$1 origin=$2 pg=$3
    shift 3
    {
        echo "origin = $origin"
        echo "pg.conninfo = $(h_pg_conninfo "$pg")"
        echo "slot.create = true"
        echo "publication.create = true"
        echo "heartbeat.interval = 200ms"
        echo "status.interval = 200ms"
        echo "retry.backoff_initial = 50ms"
        echo "retry.backoff_max = 1s"
        echo "drain.timeout = 3s"
        echo "http.listen ="
        echo "kafka.bootstrap.servers = $H_BROKER_BOOTSTRAP"
        printf '%s\n' "$@"
    } >"$file"
}

# fwd_start NAME CONFIG [ARGS...] : the forwarder as a harness daemon.
fwd_start() {
    local name=$1 conf=$2
    shift 2
    h_daemon_start "$name" "$FWD" --config "$conf" "$@"
}

# fwd_tail TOPIC FILE [ARGS...] : the whole topic decoded into FILE; fails on any message that
# does not verify (CRC, format, decode).
fwd_tail() {
    local topic=$1 file=$2 rc=0
    shift 2
    timeout -k 5 120 "$XDCR" tail --bootstrap "$H_BROKER_BOOTSTRAP" --topic "$topic" "$@" \
        >"$file" 2>"$file.err" || rc=$?
    ((rc == 0)) || h_fail "xdcr tail $topic failed with status $rc: $(tail -n 5 "$file.err")"
}

fwd_slot_confirmed() { # PGNAME SLOT
    h_psql "$1" "SELECT coalesce(confirmed_flush_lsn, '0/0') FROM pg_replication_slots WHERE slot_name = '$2'"
}

fwd_slot_reached() { # PGNAME SLOT TOKEN
    [[ "$(h_psql "$1" "SELECT confirmed_flush_lsn >= '$3' FROM pg_replication_slots WHERE slot_name = '$2'")" == t ]]
}

fwd_slot_active() { # PGNAME SLOT...: every slot exists and a walsender streams from it
    local slots
    slots=$(printf "'%s'," "${@:2}")
    [[ "$(h_psql "$1" "SELECT count(*) FROM pg_replication_slots WHERE active_pid IS NOT NULL
        AND slot_name IN (${slots%,})")" == $(($# - 1)) ]]
}

# fwd_wait_streaming PGNAME SLOT... : wait until forwarders stream from these slots (a slot that
# a forwarder creates exists only from then on: earlier writes are not captured).
fwd_wait_streaming() {
    h_wait_for 30 "a forwarder to stream from slot(s) ${*:2}" fwd_slot_active "$@"
}

# fwd_wait_confirmed TIMEOUT PGNAME SLOT [DESC] : wait until the slot confirmed everything written
# so far (Kafka acknowledged all of it). With FWD_XID_SQL set (e.g. "SELECT xid FROM txlog"), the
# xids it returns in the same snapshot as the token are written to $H_DIR/expected.xids: the
# transactions that must be in Kafka once the slot confirmed the token.
fwd_wait_confirmed() {
    local token rest
    if [[ -n "${FWD_XID_SQL:-}" ]]; then
        # one statement: every transaction its snapshot sees committed at or below the token
        h_psql "$2" "SELECT pg_current_wal_lsn() || ' ' || coalesce(string_agg(x::text, ' '), '')
            FROM ($FWD_XID_SQL) s(x)" >"$H_DIR/expected.xids"
        read -r token rest <"$H_DIR/expected.xids"
        echo "$rest" >"$H_DIR/expected.xids"
    else
        token=$(h_psql "$2" "SELECT pg_current_wal_lsn()")
    fi
    h_wait_for "$1" "slot $3 to confirm $token${4:+ ($4)}" fwd_slot_reached "$2" "$3" "$token"
}

# fwd_check_stream DESC FILE [ARGS...] : fwd_check.py stream; its JSON summary lands in FWD_SUMMARY.
fwd_check_stream() {
    local desc=$1 file=$2 rc=0
    shift 2
    FWD_SUMMARY=$("$PY" "$FWD_CHECK" stream "$file" "$@" 2>"$file.check") || rc=$?
    if ((rc == 0)); then
        h_pass "$desc: $FWD_SUMMARY"
    else
        h_fail "$desc: $(cat "$file.check") summary: $FWD_SUMMARY"
    fi
}

# fwd_summary KEY : a field of the last stream summary.
fwd_summary() {
    "$PY" -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$FWD_SUMMARY" "$1"
}

# fwd_check_state DESC FILE PGNAME [--table T]... : replayed Kafka contents equal the source.
fwd_check_state() {
    local desc=$1 file=$2 pg=$3 rc=0 out
    shift 3
    out=$("$PY" "$FWD_CHECK" state "$file" --pg "$(h_pg_conninfo "$pg")" "$@" 2>&1) || rc=$?
    if ((rc == 0)); then
        h_pass "$desc (${out//$'\n'/; })"
    else
        h_fail "$desc: $out"
    fi
}

# fwd_py FILE <<'EOF' ... : run a Python snippet with `s` = the loaded stream of FILE; it prints
# what the test asserts on.
fwd_py() {
    local file=$1
    shift
    "$PY" - "$file" "$@" <<<"import sys, json
sys.path.insert(0, '$XDCR_SOURCE_DIR/tests/integration')
from fwd_check import *
s = load(sys.argv[1])
$(cat)"
}
