#!/usr/bin/env bash
#
# test_harness.sh - proves the integration harness itself. Two PostgreSQL clusters start (one
# TLS-only, reached with sslmode=verify-full) and the dev broker starts; messages with headers
# travel over TCP between xdcr-test-kafka (librdkafka) and kcat in both directions; faults
# injected through the broker's control channel are seen by the client; and teardown leaves no
# process and no directory behind after success, failure, SIGTERM and SIGKILL.
#
# The scenarios run as child processes (this script with --scenario) so the parent can check
# from the outside what each one left behind.
set -euo pipefail

: "${XDCR_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
# shellcheck source=../support/harness.sh
source "$XDCR_SOURCE_DIR/tests/support/harness.sh"

SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
KAFKA="$XDCR_BUILD_DIR/tests/support/xdcr-test-kafka"
TOPIC=xdcr.test

# Record something for the parent: "key=value" lines in the state file.
record() {
    echo "$1" >>"$STATE"
}

kafka() {
    timeout -k 5 60 "$KAFKA" "$@"
}

kcat_() {
    timeout -k 5 30 kcat "$@"
}

scenario_main() {
    local n port expected_user info ok_cnt i out line sum lo hi p tool

    for tool in kcat socat openssl "$KAFKA"; do
        command -v "$tool" >/dev/null || h_fail "$tool is not installed (run the install script)"
    done

    # --- PostgreSQL ---------------------------------------------------------------------
    h_pg_start east >/dev/null
    h_pg_start west --ssl >/dev/null
    record "pid=$(h_pg_pid east)"
    record "pid=$(h_pg_pid west)"
    expected_user=$(id -un)
    if ((EUID == 0)); then
        expected_user=$H_PG_OS_USER
    fi
    for n in east west; do
        h_assert_eq logical "$(h_psql "$n" 'show wal_level')" "$n: wal_level = logical"
        h_assert_eq on "$(h_psql "$n" 'show track_commit_timestamp')" \
            "$n: track_commit_timestamp = on"
        h_assert_eq "20 20 on" "$(h_psql "$n" "select current_setting('max_replication_slots') \
            || ' ' || current_setting('max_wal_senders') || ' ' || current_setting('fsync')")" \
            "$n: 20 replication slots and WAL senders, fsync on"
        h_assert_eq 127.0.0.1 "$(h_psql "$n" 'show listen_addresses')" "$n: listens on 127.0.0.1 only"
        h_assert_eq "$expected_user" "$(stat -c %U "/proc/$(h_pg_pid "$n")")" \
            "$n: postmaster runs as $expected_user"
        h_check "$n: a pgoutput logical slot can be created and dropped" h_psql "$n" \
            "select pg_create_logical_replication_slot('harness_probe', 'pgoutput')" \
            "select pg_drop_replication_slot('harness_probe')"
    done
    h_assert_contains "$H_PG_CONNINFO_WEST" "sslmode=verify-full" "west conninfo uses verify-full"
    h_assert_eq t "$(h_psql west 'select ssl from pg_stat_ssl where pid = pg_backend_pid()')" \
        "west: the verify-full connection to 127.0.0.1 uses TLS"
    port=$(h_pg_port west)
    h_check "west: verify-full also succeeds for host=localhost" \
        psql -XAtq -d "host=localhost port=$port user=postgres dbname=postgres sslmode=verify-full sslrootcert=$H_PG_SSL_ROOTCERT connect_timeout=10" \
        -c 'select 1'
    h_check_fails "west: a plain TCP connection is refused (hostssl only)" \
        psql -XAtq -d "host=127.0.0.1 port=$port user=postgres dbname=postgres sslmode=disable connect_timeout=10" \
        -c 'select 1'
    h_check_fails "west: verify-full rejects a server not signed by the given CA" \
        psql -XAtq -d "host=127.0.0.1 port=$port user=postgres dbname=postgres sslmode=verify-full sslrootcert=/etc/ssl/certs/ca-certificates.crt connect_timeout=10" \
        -c 'select 1'
    h_pg_stop east immediate
    h_pg_restart east
    h_assert_eq 1 "$(h_psql east 'select 1')" "east answers on the same port after an immediate stop and restart"
    record "pid=$(h_pg_pid east)"

    # --- dev broker and its control channel ---------------------------------------------
    h_broker_start --brokers 3 --topic "$TOPIC:3" --topic faults:1
    record "pid=$(h_daemon_pid dev-broker)"
    h_assert_eq "ok pong" "$(h_broker_ctl ping)" "control channel answers ping"
    info=$(h_broker_ctl info)
    h_assert_contains "$info" "bootstrap=$H_BROKER_BOOTSTRAP brokers=1,2,3 down= " \
        "info shows the bootstrap list and brokers"
    h_assert_contains "$info" "topics=$TOPIC:3,faults:1" "info lists the created topics"
    ok_cnt=0
    for ((i = 0; i < 20; i++)); do
        if [[ "$(h_broker_ctl ping)" == "ok pong" ]]; then
            ok_cnt=$((ok_cnt + 1))
        fi
    done
    h_assert_eq 20 "$ok_cnt" "20 sequential control clients are all served"
    h_check_fails "an unknown command is an error" h_broker_ctl frobnicate
    h_assert_contains "$H_OUT" 'error unknown command "frobnicate"' "... with a clear message"
    h_check_fails "an unknown broker id is an error" h_broker_ctl broker-down 9
    h_assert_contains "$H_OUT" "brokers are 1..3" "... naming the valid ids"
    h_check_fails "an unknown ApiKey is an error" h_broker_ctl push-errors Frobnicate REQUEST_TIMED_OUT
    h_check_fails "an unknown error name is an error" h_broker_ctl push-errors Produce NO_SUCH_ERROR
    h_check_fails "a partition out of range is an error" h_broker_ctl leader "$TOPIC" 3 1
    h_check_fails "a wrong argument count is an error" h_broker_ctl broker-rtt 1
    out=$( (printf 'ping\r\n\n'; head -c 6000 /dev/urandom; printf '\nping\n') |
        timeout 10 socat -t 5 - "UNIX-CONNECT:$XDCR_BROKER_CONTROL" 2>&1 || true)
    h_assert_contains "$out" "ok pong" "a raw client gets replies (CRLF accepted)"
    h_assert_contains "$out" "error " "garbage input gets error replies"
    h_assert_eq "ok pong" "$(h_broker_ctl ping)" "the broker survives garbage input"
    h_check "push-errors accepts names and numbers" \
        h_broker_ctl push-errors 3 NOT_LEADER_OR_FOLLOWER 7 _TRANSPORT
    h_check "clear-errors clears them" h_broker_ctl clear-errors Metadata
    # DescribeAcls: an API our clients never call, so these stay pending.
    h_check "push-broker-errors accepts ERR:RTT entries" \
        h_broker_ctl push-broker-errors 2 DescribeAcls REQUEST_TIMED_OUT:10 6
    h_assert_eq "ok 2" "$(h_broker_ctl pending-errors 2 DescribeAcls)" "pending-errors counts them"

    # --- messages over TCP: librdkafka <-> kcat ---------------------------------------------
    h_check "xdcr-test-kafka produces a message with headers" \
        kafka produce --bootstrap "$H_BROKER_BOOTSTRAP" --topic "$TOPIC" --key k1 \
        --header origin=east --header seq=0/16B3748 --value 'hello from librdkafka'
    h_assert_contains "$H_OUT" "\"topic\":\"$TOPIC\"" "... and reports its delivery"
    out=$(kcat_ -C -b "$H_BROKER_BOOTSTRAP" -t "$TOPIC" -o beginning -c 1 -e -q \
        -f '%k|%h|%s\n' 2>&1) || h_fail "kcat could not consume: $out"
    h_assert_eq "k1|origin=east,seq=0/16B3748|hello from librdkafka" "$out" \
        "kcat consumes it with key, headers and value"
    h_check "kcat produces a message with headers" bash -c \
        'printf "hello from kcat" | timeout -k 5 30 kcat -P -b "$1" -t "$2" -k k2 -H origin=west -H seq=1/0' \
        _ "$H_BROKER_BOOTSTRAP" "$TOPIC"
    out=$(kafka consume --bootstrap "$H_BROKER_BOOTSTRAP" --topic "$TOPIC" --count 2 \
        --timeout-ms 20000 --from-beginning) || h_fail "xdcr-test-kafka could not consume: $out"
    h_assert_eq 2 "$(grep -c '"offset"' <<<"$out")" "xdcr-test-kafka consumes both messages"
    line=$(grep '"key":"k2"' <<<"$out" || true)
    h_assert_contains "$line" \
        '"headers":[{"key":"origin","value":"west"},{"key":"seq","value":"1/0"}],"value":"hello from kcat"' \
        "... the kcat message with its headers and value as JSON"
    line=$(grep '"key":"k1"' <<<"$out" || true)
    h_assert_contains "$line" '"value":"hello from librdkafka"' "... and the librdkafka message"

    # Consumer groups commit what they printed.
    out=$(kafka consume --bootstrap "$H_BROKER_BOOTSTRAP" --topic "$TOPIC" --group g1 \
        --count 2 --timeout-ms 30000 --from-beginning) || h_fail "group consume failed: $out"
    h_assert_eq 2 "$(grep -c '"offset"' <<<"$out")" "group g1 reads both messages"
    kafka produce --bootstrap "$H_BROKER_BOOTSTRAP" --topic "$TOPIC" --key k3 --value third -q ||
        h_fail "produce of the third message failed"
    out=$(kafka consume --bootstrap "$H_BROKER_BOOTSTRAP" --topic "$TOPIC" --group g1 \
        --count 1 --timeout-ms 30000 --from-beginning) || h_fail "group consume failed: $out"
    h_assert_contains "$out" '"key":"k3"' "group g1 resumes after its committed offsets"
    sum=0
    for p in 0 1 2; do
        read -r lo hi < <(kafka watermarks --bootstrap "$H_BROKER_BOOTSTRAP" --topic "$TOPIC" \
            --partition "$p") || h_fail "watermarks of partition $p failed"
        sum=$((sum + hi - lo))
    done
    h_assert_eq 3 "$sum" "watermarks add up to the 3 messages produced"

    # --- faults through the control channel, seen by the client ---------------------------
    h_check "push-errors Produce TOPIC_AUTHORIZATION_FAILED" \
        h_broker_ctl push-errors Produce TOPIC_AUTHORIZATION_FAILED
    h_check_fails "the next produce fails" \
        kafka produce --bootstrap "$H_BROKER_BOOTSTRAP" --topic faults --value denied
    h_assert_contains "$H_OUT" "TOPIC_AUTHORIZATION_FAILED" "... with the injected error"
    h_check "the produce after it succeeds" \
        kafka produce --bootstrap "$H_BROKER_BOOTSTRAP" --topic faults --value allowed
    h_check "push-errors Produce with retriable errors" \
        h_broker_ctl push-errors Produce NOT_LEADER_OR_FOLLOWER REQUEST_TIMED_OUT
    h_check "the idempotent producer retries through retriable errors" \
        kafka produce --bootstrap "$H_BROKER_BOOTSTRAP" --topic faults --value retried
    h_check "broker-down all" h_broker_ctl broker-down all
    h_assert_contains "$(h_broker_ctl info)" "down=1,2,3 " "info shows all brokers down"
    h_check_fails "a produce with message.timeout.ms=2000 fails while all brokers are down" \
        kafka produce --bootstrap "$H_BROKER_BOOTSTRAP" --topic faults --value lost \
        -X message.timeout.ms=2000 --timeout-ms 15000
    h_assert_contains "$H_OUT" "_MSG_TIMED_OUT" "... with a message timeout"
    h_check "broker-up all" h_broker_ctl broker-up all
    h_check "the same produce succeeds after broker-up" \
        kafka produce --bootstrap "$H_BROKER_BOOTSTRAP" --topic faults --value delivered \
        -X message.timeout.ms=10000 --timeout-ms 20000
    h_check "leader faults 0 2" h_broker_ctl leader faults 0 2
    h_check "metadata reads the new leader" kafka metadata --bootstrap "$H_BROKER_BOOTSTRAP" --topic faults
    h_assert_contains "$H_OUT" '"partition":0,"leader":2' "the client sees broker 2 as leader"
    h_check "push-broker-errors 2 Produce TOPIC_AUTHORIZATION_FAILED:100" \
        h_broker_ctl push-broker-errors 2 Produce TOPIC_AUTHORIZATION_FAILED:100
    h_check_fails "a produce to the partition led by broker 2 fails" \
        kafka produce --bootstrap "$H_BROKER_BOOTSTRAP" --topic faults --value denied-by-2
    h_assert_contains "$H_OUT" "TOPIC_AUTHORIZATION_FAILED" "... with the error injected on broker 2"
    h_assert_eq "ok 0" "$(h_broker_ctl pending-errors 2 Produce)" "... which used it up"
    h_check "the next produce to the new leader succeeds" \
        kafka produce --bootstrap "$H_BROKER_BOOTSTRAP" --topic faults --value after-leader-change
    h_check "create-topic fresh 2" h_broker_ctl create-topic fresh 2
    h_check_fails "create-topic of an existing topic" h_broker_ctl create-topic fresh 2
    h_assert_contains "$H_OUT" "already exists" "... says it already exists"
    h_assert_eq "0 0" "$(kafka watermarks --bootstrap "$H_BROKER_BOOTSTRAP" --topic fresh --partition 1)" \
        "the created topic has an empty partition 1"
    out=$(kafka consume --bootstrap "$H_BROKER_BOOTSTRAP" --topic faults --count 0 \
        --timeout-ms 5000 --from-beginning) || h_fail "consume of the fault topic failed: $out"
    h_assert_eq "allowed retried delivered after-leader-change" "$(grep -o '"value":"[a-z-]*"' <<<"$out" |
        cut -d'"' -f4 | tr '\n' ' ' | sed 's/ $//')" \
        "the fault topic holds exactly the acknowledged messages, once each, in order"

    # The mock keeps about 5 MiB per partition: older data goes, the low watermark moves up.
    h_check "create-topic retention 1" h_broker_ctl create-topic retention 1
    head -c 900000 /dev/zero | tr '\0' r >"$H_DIR/900k"
    h_check "8 messages of 900 kB are delivered" kafka produce --bootstrap "$H_BROKER_BOOTSTRAP" \
        --topic retention --value-file "$H_DIR/900k" --count 8 -q -X batch.num.messages=1
    read -r lo hi < <(kafka watermarks --bootstrap "$H_BROKER_BOOTSTRAP" --topic retention \
        --partition 0) || h_fail "watermarks of the retention topic failed"
    h_assert_eq 8 "$hi" "the high watermark counts all 8"
    if ((lo > 0 && lo < 8)); then
        h_pass "retention dropped the oldest messages (low watermark $lo)"
    else
        h_fail "expected the low watermark between 1 and 7, got $lo"
    fi

    # --- clean broker shutdown -----------------------------------------------------------
    h_broker_stop >/dev/null
    h_assert_eq 0 "$H_LAST_EXIT" "the dev broker exits 0 on SIGTERM (clean shutdown, no leaks)"
    h_check_fails "its control socket and bootstrap file are gone" \
        ls "$H_DIR/broker/control.sock" "$H_DIR/broker/bootstrap"
    h_daemon_start sleeper sleep 300
    record "pid=$(h_daemon_pid sleeper)"
    record "ready"
}

# Start a cluster, the broker and a daemon, then wait to be interrupted (or fail on request).
scenario_hold() {
    local i
    h_pg_start one >/dev/null
    record "pid=$(h_pg_pid one)"
    h_broker_start --brokers 1
    record "pid=$(h_daemon_pid dev-broker)"
    h_daemon_start sleeper sleep 300
    record "pid=$(h_daemon_pid sleeper)"
    h_pass "hold: everything started"
    record "ready"
    if [[ "${1:-}" == fail ]]; then
        h_fail "deliberate failure"
    fi
    for ((i = 0; i < 300; i++)); do
        sleep 0.5
    done
    h_fail "hold: nobody interrupted us within 150s"
}

if [[ "${1:-}" == --scenario ]]; then
    STATE=$3
    h_init
    record "dir=$H_DIR"
    case "$2" in
    main) scenario_main ;;
    hold) scenario_hold ;;
    fail) scenario_hold fail ;;
    empty) ;;
    *) h_fail "unknown scenario $2" ;;
    esac
    h_finish
fi

# ---- the parent: run each scenario and check what it left behind ---------------------------

h_init
T0=$(h__now_ms)

# check_gone SCENARIO STATE_FILE: its temp dir is gone and none of its processes are running.
check_gone() {
    local name=$1 state=$2 dir pid alive=() left=()
    dir=$(sed -n 's/^dir=//p' "$state")
    [[ -n "$dir" ]] || h_fail "$name: the scenario did not record its temp dir"
    h_check_fails "$name: the temp dir $dir is gone" test -e "$dir"
    for pid in $(sed -n 's/^pid=//p' "$state"); do
        if h__alive "$pid"; then
            alive+=("$pid")
        fi
    done
    h_assert_eq "" "${alive[*]}" "$name: no recorded process (postgres, dev broker, daemon) is running"
    mapfile -t left < <(h__find_procs "$dir")
    h_assert_eq "" "${left[*]}" "$name: no process runs in or with its temp dir"
}

# run_child SCENARIO: run in the foreground; output to ours and to $H_DIR/SCENARIO.out.
run_child() {
    local name=$1 rc=0
    : >"$H_DIR/$name.state"
    TMPDIR=$H_DIR H_RESULT_FILE="$H_DIR/$name.result" timeout -k 10 300 \
        bash "$SELF" --scenario "$name" "$H_DIR/$name.state" 2>&1 | tee "$H_DIR/$name.out" || rc=$?
    return "$rc"
}

# 1. The full scenario passes and leaves nothing behind.
rc=0
run_child main || rc=$?
h_assert_eq 0 "$rc" "main scenario passed"
read -r child_pass child_fail <"$H_DIR/main.result" || h_fail "main scenario wrote no result"
h_assert_eq 0 "$child_fail" "main scenario has no failed checks"
check_gone main "$H_DIR/main.state"
H_PASS_COUNT=$((H_PASS_COUNT + child_pass))

# 2. A failing test exits non-zero, prints its daemon logs and still cleans up.
rc=0
run_child fail >/dev/null || rc=$?
h_assert_eq 1 "$rc" "fail scenario exits with status 1"
out=$(cat "$H_DIR/fail.out")
h_assert_contains "$out" "FAIL - deliberate failure" "fail scenario reports the failure"
h_assert_contains "$out" "----- log logs/dev-broker.log" "fail scenario prints the daemon logs"
h_assert_contains "$out" "1 passed, 1 failed" "fail scenario prints its summary"
check_gone fail "$H_DIR/fail.state"

# 3. A test that asserts nothing fails.
rc=0
run_child empty >/dev/null || rc=$?
h_assert_eq 1 "$rc" "a test without assertions fails"
check_gone empty "$H_DIR/empty.state"

# 4 and 5. SIGTERM runs the teardown; SIGKILL leaves it to the watchdog.
for sig in TERM KILL; do
    state="$H_DIR/hold-$sig.state"
    : >"$state"
    TMPDIR=$H_DIR bash "$SELF" --scenario hold "$state" >"$H_DIR/hold-$sig.out" 2>&1 &
    cpid=$!
    h_wait_for 120 "the hold scenario to start (SIG$sig)" grep -qx ready "$state"
    kill -"$sig" "$cpid"
    rc=0
    { wait "$cpid"; } 2>/dev/null || rc=$?
    if [[ "$sig" == TERM ]]; then
        h_assert_eq 143 "$rc" "SIGTERM: the test exits with status 143"
        h_assert_contains "$(cat "$H_DIR/hold-$sig.out")" "FAIL - interrupted by SIGTERM" \
            "SIGTERM: the interruption is reported as a failure"
    else
        h_assert_eq 137 "$rc" "SIGKILL: the test died"
        dir=$(sed -n 's/^dir=//p' "$state")
        h_wait_for 60 "the watchdog to remove $dir after SIGKILL" test ! -e "$dir"
    fi
    check_gone "hold-SIG$sig" "$state"
done

h__note "test_harness took $((($(h__now_ms) - T0) / 1000))s"
h_finish
