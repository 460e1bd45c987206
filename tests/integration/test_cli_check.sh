#!/usr/bin/env bash
#
# test_cli_check.sh - `xdcr check` (the consumer's preflight as a command) against a real source
# publication and target database:
#  1. a deliberately wrong target (missing table, table without primary key, missing column,
#     incompatible type, NOT NULL target column without default the source lacks): exit 1 and
#     every mismatch listed in one run, one line each, with a summary; the same as JSON;
#  2. the target fixed: exit 0;
#  3. usage errors and an unknown publication exit 2; an unreachable database exits 7.
set -euo pipefail

: "${XDCR_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
# shellcheck source=../support/harness.sh
source "$XDCR_SOURCE_DIR/tests/support/harness.sh"

XDCR="$XDCR_BUILD_DIR/cli/xdcr"

# run_check EXPECTED_STATUS DESCRIPTION ARGS... : output in H_OUT
run_check() {
    local want=$1 desc=$2 rc=0
    shift 2
    H_OUT=$("$XDCR" check "$@" 2>&1) || rc=$?
    h_assert_eq "$want" "$rc" "$desc (exit status)"
}

h_init
h_pg_start east >/dev/null
h_pg_start west >/dev/null
SRC=$(h_pg_conninfo east)
TGT=$(h_pg_conninfo west)

h_psql east "CREATE TYPE mood AS ENUM ('ok', 'sad');
             CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
             CREATE TABLE good (id integer PRIMARY KEY, a text, b integer, m mood, t int[],
                                d1 posint, d2 posint, d3 integer);
             CREATE TABLE missing_tbl (id integer PRIMARY KEY);
             CREATE TABLE nokey (id integer PRIMARY KEY, v text);
             CREATE TABLE miss_col (id integer PRIMARY KEY, a text, c date);
             CREATE TABLE badtype (id integer PRIMARY KEY, b bigint);
             CREATE TABLE nn_col (id integer PRIMARY KEY, a text);
             CREATE TABLE unpublished (id integer);
             CREATE PUBLICATION xdcr_east FOR TABLE good, missing_tbl, nokey, miss_col, badtype,
                 nn_col" >/dev/null
h_psql west "CREATE TYPE mood AS ENUM ('ok', 'sad');
             CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
             -- domains: on both sides, at the source only, at the target only
             CREATE TABLE good (id bigint PRIMARY KEY, a varchar(20), b bigint, m mood, t bigint[],
                                d1 posint, d2 integer, d3 posint,
                                extra integer NOT NULL DEFAULT 0);
             CREATE TABLE nokey (id integer, v text);
             CREATE TABLE miss_col (id integer PRIMARY KEY, a text);
             CREATE TABLE badtype (id integer PRIMARY KEY, b integer);
             CREATE TABLE nn_col (id integer PRIMARY KEY, a text, d integer NOT NULL)" >/dev/null

# ---- 1. every mismatch at once -----------------------------------------------------------------
run_check 1 "a wrong target fails" --source "$SRC" --publication xdcr_east --target "$TGT"
h_assert_contains "$H_OUT" "table public.missing_tbl: table public.missing_tbl does not exist at the target" \
    "missing table reported"
h_assert_contains "$H_OUT" "table public.nokey: table public.nokey has no primary key at the target" \
    "table without primary key reported"
h_assert_contains "$H_OUT" "table public.miss_col: column public.miss_col.c (date) is missing at the target" \
    "missing column reported"
h_assert_contains "$H_OUT" "table public.badtype: column public.badtype.b has type bigint at the source but integer at the target" \
    "incompatible type reported"
h_assert_contains "$H_OUT" "table public.nn_col: column public.nn_col.d is NOT NULL without a default" \
    "unfillable NOT NULL column reported"
h_assert_eq 5 "$(grep -c '^table ' <<<"$H_OUT")" "one line per problem, nothing for the fitting table"
h_assert_contains "$H_OUT" "publication xdcr_east: 5 problem(s) in 5 of 6 table(s)" "summary"
[[ "$H_OUT" != *unpublished* && "$H_OUT" != *"public.good"* ]] ||
    h_fail "only published, unfitting tables are reported: $H_OUT"
h_pass "fitting and unpublished tables are not reported"

run_check 1 "a wrong target fails with --json" --source "$SRC" --publication xdcr_east --target "$TGT" --json
h_assert_eq "false|6|5|5|public.badtype,public.miss_col,public.missing_tbl,public.nn_col,public.nokey" \
    "$(jq -r '[.ok, .tables, .tables_with_problems, (.problems | length), ([.problems[].table] | sort | join(","))] | map(tostring) | join("|")' <<<"$H_OUT")" \
    "the JSON report lists every problem"

# ---- 2. a matching target ----------------------------------------------------------------------
h_psql west "CREATE TABLE missing_tbl (id integer PRIMARY KEY);
             ALTER TABLE nokey ADD PRIMARY KEY (id);
             ALTER TABLE miss_col ADD COLUMN c date;
             ALTER TABLE badtype ALTER COLUMN b TYPE numeric;
             ALTER TABLE nn_col ALTER COLUMN d SET DEFAULT 0" >/dev/null
run_check 0 "a matching target passes" --source "$SRC" --publication xdcr_east --target "$TGT"
h_assert_eq "publication xdcr_east: all 6 table(s) fit the target" "$H_OUT" "only the summary is printed"
run_check 0 "a matching target passes with --json" --source "$SRC" --publication xdcr_east --target "$TGT" --json
h_assert_eq "true|0" "$(jq -r '"\(.ok)|\(.problems | length)"' <<<"$H_OUT")" "JSON says ok"

# ---- 3. usage, unknown publication, unreadable databases -------------------------------------
run_check 2 "missing --target is a usage error" --source "$SRC" --publication xdcr_east
run_check 2 "an unknown option is a usage error" --source "$SRC" --publication xdcr_east --target "$TGT" --bogus
run_check 2 "an unknown publication" --source "$SRC" --publication nope --target "$TGT"
h_assert_contains "$H_OUT" 'publication "nope" does not exist at the source' "unknown publication named"
run_check 7 "an unreachable target" --source "$SRC" --publication xdcr_east \
    --target "host=/nonexistent dbname=x connect_timeout=2"
h_assert_contains "$H_OUT" "could not connect to the target" "target named in the error"
run_check 7 "an unreachable source" --source "host=/nonexistent dbname=x connect_timeout=2" \
    --publication xdcr_east --target "$TGT"
h_assert_contains "$H_OUT" "could not connect to the source" "source named in the error"
run_check 0 "--help" --help

h_finish
