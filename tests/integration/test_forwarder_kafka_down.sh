#!/usr/bin/env bash
#
# test_forwarder_kafka_down.sh - Kafka faults under a write load, one forwarder process
# throughout (recovery without a restart), each phase checked through Kafka contents and the
# slot's confirmed_flush_lsn:
#   1. all brokers down shorter than kafka.message.timeout.ms but longer than wal_sender_timeout:
#      nothing re-streamed, the replication connection survives (keepalives answered while the
#      in-flight limit holds the forwarder back);
#   2. all brokers down longer than kafka.message.timeout.ms while ~40 MB of rows are written:
#      RSS stays bounded (in-flight limits, backpressure), the slot retains WAL instead, and
#      after broker-up everything arrives;
#   2b. a failed delivery followed by a slow re-stream (a large aborted transaction to re-decode):
#      no progress mark from the old stream's position overtakes the re-streamed transactions;
#   3. a permanent produce error: the delivery fails, the forwarder re-streams from the slot;
#   4. an ambiguous delivery (the broker persists a produce but answers after the timeout):
#      re-streamed, duplicates identical;
#   5. (a restarted forwarder) retriable produce errors: the idempotent producer retries, no
#      re-stream, no duplicate;
#   6. (restarted with enable.gapless.guarantee) a fatal producer error: the producer is
#      recreated and the forwarder re-streams, without a restart.
# After each phase: every committed transaction is in Kafka, the chaining rule applies each once.
set -euo pipefail

: "${XDCR_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
# shellcheck source=../support/harness.sh
source "$XDCR_SOURCE_DIR/tests/support/harness.sh"
# shellcheck source=fwd_lib.sh
source "$XDCR_SOURCE_DIR/tests/integration/fwd_lib.sh"

TOPIC=xdcr.east.changes
FWD_XID_SQL="SELECT xid FROM txlog" # fwd_wait_confirmed snapshots the committed transactions
TIMEOUT_MS=4000                  # kafka.message.timeout.ms
RSS_GROWTH_MAX_KB=$((24 * 1024)) # unbounded in-flight limits give +50 MB here, bounded ones +3 MB

h_init
T0=$(h__now_ms)
h_pg_start east --set wal_sender_timeout=2s >/dev/null # shorter than the short outage
h_broker_start --brokers 3 --topic "$TOPIC:1"
h_psql east "
CREATE TABLE txlog (xid bigint PRIMARY KEY);
CREATE TABLE kv (id integer PRIMARY KEY, v text, n integer);
CREATE TABLE blob (id integer PRIMARY KEY, body text);
CREATE TABLE scratch (id integer, v text);
" >/dev/null
# Small in-flight limits: a short outage already backpressures (the forwarder stops reading WAL
# and must still answer keepalives). Fast reconnects after broker-up.
fwd_conf "$H_DIR/east.conf" east east "kafka.message.timeout.ms = $TIMEOUT_MS" \
    "kafka.reconnect.backoff.max.ms = 250" "inflight.max_messages = 50" \
    "inflight.max_bytes = 2MB" "message.max_bytes = 64kB"

cat >"$H_DIR/load.sql" <<'EOF'
\set id random(1, 300)
BEGIN;
INSERT INTO txlog (xid) VALUES (pg_current_xact_id()::text::bigint);
INSERT INTO kv VALUES (:id, md5(random()::text), 1)
    ON CONFLICT (id) DO UPDATE SET v = excluded.v, n = kv.n + 1;
COMMIT;
EOF
chmod 644 "$H_DIR/load.sql"

# ASan's quarantine would hold up to 256 MB of freed memory and hide what the forwarder keeps.
h_daemon_start fwd env "ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=8" \
    "$FWD" --config "$H_DIR/east.conf"
FWD_PID=$(h_daemon_pid fwd)
fwd_wait_streaming east xdcr_east
h_daemon_start load "$H_PG_BIN/pgbench" -n -c 1 -T 600 -R 100 -f "$H_DIR/load.sql" \
    -h 127.0.0.1 -p "$(h_pg_port east)" -U postgres postgres

# Errors are injected on the partition leader's broker: once a broker has an error stack for an
# ApiKey (even an empty one), the mock no longer uses the cluster-wide one (push-errors) there.
leader=$(timeout -k 5 30 "$XDCR_BUILD_DIR/tests/support/xdcr-test-kafka" metadata --bootstrap \
    "$H_BROKER_BOOTSTRAP" --topic "$TOPIC" | grep -o '"partition":0,"leader":[0-9]*' | grep -o '[0-9]*$')
[[ -n "$leader" ]] || h_fail "could not find the leader of $TOPIC"

# inject DESC ERR... : errors for the leader's next Produce requests
inject() {
    local desc=$1
    shift
    h_check "$desc (broker $leader)" h_broker_ctl push-broker-errors "$leader" Produce "$@"
}

# all_injected_used PHASE : the injected errors were all met (the phase tested something)
all_injected_used() {
    h_assert_eq "ok 0" "$(h_broker_ctl pending-errors "$leader" Produce)" "$1: every injected error was used"
}

walsender() {
    h_psql east "SELECT active_pid FROM pg_replication_slots WHERE slot_name = 'xdcr_east'"
}

rss_kb() {
    awk '/^VmRSS:/ { print $2 }' "/proc/$FWD_PID/status"
}

# check_phase NAME : wait until the slot confirmed everything so far, then check the whole topic.
check_phase() {
    fwd_wait_confirmed 60 east xdcr_east "$1"
    h_assert_eq "$FWD_PID" "$(h_daemon_pid fwd || echo gone)" "$1: the same forwarder process runs"
    fwd_tail "$TOPIC" "$H_DIR/$1.jsonl"
    # A failed delivery may leave later messages of its stream ahead of the re-stream: the order
    # that counts is the one the chaining rule applies.
    fwd_check_stream "$1: every committed transaction in Kafka, chaining rule applies each once, in order" \
        "$H_DIR/$1.jsonl" --pg "$(h_pg_conninfo east)" --expect-sql "$FWD_XID_SQL" \
        --expect-file "$H_DIR/expected.xids" --log-table public.txlog --reordered-ok
}

sleep 2
check_phase warmup
starts=$(fwd_summary stream_starts)
dups=$(fwd_summary duplicates)

# ---- 1. all brokers down for less than message.timeout.ms ----------------------------------
# Longer than wal_sender_timeout: the walsender survives only if status updates keep flowing
# while the forwarder waits for Kafka with its in-flight limit reached.
ws=$(walsender)
h_check "all brokers down" h_broker_ctl broker-down all
sleep 2.5
h_check "all brokers up after 2.5s" h_broker_ctl broker-up all
check_phase short_outage
h_assert_eq "$starts" "$(fwd_summary stream_starts)" "short outage: no re-stream"
h_assert_eq "$dups" "$(fwd_summary duplicates)" "short outage: no duplicate"
h_assert_eq "$ws" "$(walsender)" "short outage: the same walsender (keepalives answered while Kafka was down)"

# ---- 2. all brokers down for longer than message.timeout.ms, under a burst -------------------
rss0=$(rss_kb)
confirmed0=$(fwd_slot_confirmed east xdcr_east)
h_check "all brokers down" h_broker_ctl broker-down all
# 20,000 rows of 2 kB: small in WAL and in Kafka (they compress), 100+ MB as JSON in memory
h_daemon_start burst psql -XAtq -d "$(h_pg_conninfo east)" -c \
    "INSERT INTO blob SELECT g, repeat(chr(97 + g % 26), 2000) || g FROM generate_series(1, 20000) g"
rss_max=$rss0
for ((i = 0; i < 24; i++)); do # 6 s, longer than kafka.message.timeout.ms
    sleep 0.25
    r=$(rss_kb) || h_fail "the forwarder died while Kafka was down"
    ((r > rss_max)) && rss_max=$r
done
h_daemon_wait burst 30 >/dev/null
h_assert_eq 0 "$H_LAST_EXIT" "the burst committed while Kafka was down"
retained=$(h_psql east "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn) > 1000000 FROM pg_replication_slots WHERE slot_name = 'xdcr_east'")
h_assert_eq t "$retained" "the slot retains the WAL written while Kafka is down (confirmed_flush_lsn stays behind, was $confirmed0)"
h__note "RSS before ${rss0} kB, max while Kafka was down ${rss_max} kB"
if ((rss_max - rss0 > RSS_GROWTH_MAX_KB)); then
    h_fail "RSS grew by $((rss_max - rss0)) kB while Kafka was down (limit $RSS_GROWTH_MAX_KB kB)"
fi
h_pass "RSS bounded while Kafka was down: +$((rss_max - rss0)) kB"
h_check "all brokers up" h_broker_ctl broker-up all
check_phase long_outage
((starts < $(fwd_summary stream_starts))) || h_fail "long outage: expected a re-stream after the message timeout"
h_assert_eq 20000 "$(fwd_py "$H_DIR/long_outage.jsonl" <<<'print(len({c["new"]["id"] for t in s.txns() for c in t.changes if c.get("table") == "blob"}))')" \
    "long outage: all 20,000 burst rows are in Kafka"
starts=$(fwd_summary stream_starts)
dups=$(fwd_summary duplicates)

# ---- 2b. a failed delivery, then a slow re-stream -----------------------------------------------
# The old stream saw a transaction T and later keepalives before T's delivery failed; the new
# stream must re-decode a large aborted transaction before it gets to T again. A progress mark
# made in between must not carry the old stream's position (regression: it told consumers that
# T was published, and the forwarder then stopped on T with EINVAL).
h_daemon_stop load >/dev/null
h_check "all brokers down" h_broker_ctl broker-down all
h_psql east "BEGIN" "INSERT INTO scratch SELECT g, repeat('s', 100) FROM generate_series(1, 300000) g" \
    "ROLLBACK" >/dev/null
h_psql east "INSERT INTO txlog VALUES (pg_current_xact_id()::text::bigint)" >/dev/null
sleep "$((TIMEOUT_MS / 1000)).5"
h_check "all brokers up after the message timeout" h_broker_ctl broker-up all
sleep 3
check_phase slow_restream
((starts < $(fwd_summary stream_starts))) || h_fail "slow re-stream: expected a re-stream"
starts=$(fwd_summary stream_starts)
dups=$(fwd_summary duplicates)
h_daemon_start load "$H_PG_BIN/pgbench" -n -c 1 -T 600 -R 100 -f "$H_DIR/load.sql" \
    -h 127.0.0.1 -p "$(h_pg_port east)" -U postgres postgres

# ---- 3. a permanent produce error --------------------------------------------------------------
inject "push a permanent Produce error" TOPIC_AUTHORIZATION_FAILED
sleep 2
check_phase permanent
all_injected_used permanent
((starts < $(fwd_summary stream_starts))) || h_fail "permanent error: expected a re-stream from the slot"
h_pass "permanent error: the forwarder re-streamed from the slot ($(fwd_summary stream_starts) stream starts)"
starts=$(fwd_summary stream_starts)
dups=$(fwd_summary duplicates)

# ---- 4. an ambiguous delivery: persisted, but acknowledged after message.timeout.ms -------------
inject "delay one Produce response by 5s" NO_ERROR:5000
sleep 6
check_phase ambiguous
all_injected_used ambiguous
((starts < $(fwd_summary stream_starts))) || h_fail "ambiguous delivery: expected a re-stream"
h_pass "ambiguous delivery: re-streamed; duplicates now $(fwd_summary duplicates) (were $dups), all identical"

# ---- 5. retriable produce errors --------------------------------------------------------------
# librdkafka 2.0.2's mock checks sequence numbers only for transactional producers: with several
# requests in flight, a batch sent after a failed one is accepted, and the producer then counts
# the failed batch as implicitly acknowledged (a real broker answers OUT_OF_ORDER_SEQUENCE_NUMBER
# and the producer retries in order). One request in flight keeps the mock honest here.
h_daemon_stop fwd >/dev/null
h_assert_eq 0 "$H_LAST_EXIT" "the forwarder drains and exits 0 after the outages and failed deliveries"
fwd_start fwd "$H_DIR/east.conf" --kafka.max.in.flight.requests.per.connection=1
FWD_PID=$(h_daemon_pid fwd)
check_phase restarted
starts=$(fwd_summary stream_starts)
dups=$(fwd_summary duplicates)
inject "push retriable Produce errors" NOT_LEADER_OR_FOLLOWER REQUEST_TIMED_OUT \
    NOT_ENOUGH_REPLICAS LEADER_NOT_AVAILABLE
sleep 2
check_phase retriable
all_injected_used retriable
h_assert_eq "$starts" "$(fwd_summary stream_starts)" "retriable errors: no re-stream (the producer retried)"
h_assert_eq "$dups" "$(fwd_summary duplicates)" "retriable errors: no duplicate"

# ---- 6. a fatal idempotence error: the producer is recreated ---------------------------------------
# With enable.gapless.guarantee an out-of-order sequence is fatal for the librdkafka producer.
# Without the load, so that the injected error meets a produce request of its own.
h_daemon_stop load >/dev/null
h_daemon_stop fwd >/dev/null
h_assert_eq 0 "$H_LAST_EXIT" "the forwarder drains and exits 0"
fwd_start fwd "$H_DIR/east.conf" --kafka.enable.gapless.guarantee=true
FWD_PID=$(h_daemon_pid fwd)
log_txn() {
    h_psql east "INSERT INTO txlog VALUES (pg_current_xact_id()::text::bigint)" >/dev/null
}
log_txn
check_phase gapless
starts=$(fwd_summary stream_starts)
inject "push a Produce error that is fatal for the producer" OUT_OF_ORDER_SEQUENCE_NUMBER
for ((i = 0; i < 5; i++)); do
    log_txn
    sleep 0.3
done
check_phase final
all_injected_used fatal
((starts < $(fwd_summary stream_starts))) || h_fail "fatal producer error: expected a re-stream"
h_pass "fatal producer error: re-streamed with a new producer, same process"

h_daemon_stop fwd >/dev/null
h_assert_eq 0 "$H_LAST_EXIT" "the forwarder drains and exits 0"
fwd_check_state "replaying the stream gives the source's rows" "$H_DIR/final.jsonl" east \
    --table public.kv --table public.txlog --table public.blob

h__note "test_forwarder_kafka_down took $((($(h__now_ms) - T0) / 1000))s"
h_finish
