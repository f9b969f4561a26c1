#!/usr/bin/env bash
# Baton load benchmark: builds `baton` and `baton-bench` in release mode, starts a
# fresh server per backend on a free loopback port, and measures GET /healthz,
# authenticated GET /v1/account, collect scheme options, order creation (12 instructions
# each), instrument store and read in the customer vault, and token issuance against it;
# SCENARIO=collect measures collections end to end (order + execute through SANDBOX_CARD;
# the bench server accepts raw card data for its set-up).
#
# Usage: bench/run.sh [sqlite|postgres|all]          (default: all)
#
# Settings (environment):
#   CONCURRENCY   space-separated connection counts to try   (default: "16 64")
#   SCENARIO      one baton-bench scenario instead of all     (e.g. orders)
#   DURATION      measured seconds per scenario              (default: 10)
#   WARMUP        unrecorded seconds before each scenario    (default: 2)
#   BENCH_THREADS generator runtime threads                  (default: number of CPUs)
#   PG_ADMIN_URL  PostgreSQL server for a throw-away database (default: postgres://postgres@127.0.0.1:5432)
#   SKIP_BUILD=1  use the binaries already built
#   ANALYZE_EVERY seconds between ANALYZEs of the PostgreSQL database while it is
#                 measured, when the server's autovacuum is off (default: 5; 0: never)
#   BATON_BIN     the server binary to run (default: the release build of this tree);
#                 bench/compare.sh uses it to run two builds against one generator
#   STAMP         the results' file prefix (default: the UTC time)
#   SERVER_LOG    the server's BATON_LOG (default: warn; e.g. warn,baton_store::sqlite=trace
#                 for the SQLite group writer's group sizes)
#   CARGO_TARGET_DIR is honoured. Results go to bench/results/ (git-ignored).
set -euo pipefail

backend_arg="${1:-all}"
case "$backend_arg" in
  sqlite) backends=(sqlite) ;;
  postgres) backends=(postgres) ;;
  all) backends=(sqlite postgres) ;;
  *) echo "usage: $0 [sqlite|postgres|all]" >&2; exit 64 ;;
esac

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
concurrency_levels="${CONCURRENCY:-16 64}"
duration="${DURATION:-10}"
warmup="${WARMUP:-2}"
pg_admin_url="${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432}"
results_dir="$root/bench/results"
stamp="${STAMP:-$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$results_dir"

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  echo "==> building baton and baton-bench (release; target dir $target_dir)" >&2
  cargo build --release -p baton -p baton-bench
fi
baton="${BATON_BIN:-$target_dir/release/baton}"
bench="$target_dir/release/baton-bench"
[[ -x "$baton" && -x "$bench" ]] || { echo "missing $baton or $bench" >&2; exit 1; }

work="$(mktemp -d -t baton-bench.XXXXXX)"
server_pid=""
analyzer_pid=""
pg_db=""
failed_runs=0

stop_server() {
  if [[ -n "$analyzer_pid" ]]; then
    kill "$analyzer_pid" 2>/dev/null || true
    wait "$analyzer_pid" 2>/dev/null || true
    analyzer_pid=""
  fi
  if [[ -n "$server_pid" ]]; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
  fi
}

drop_pg_db() {
  if [[ -n "$pg_db" ]]; then
    dropdb --if-exists --maintenance-db="$pg_admin_url/postgres" "$pg_db" || echo "could not drop database $pg_db" >&2
    pg_db=""
  fi
}

cleanup() {
  stop_server
  drop_pg_db
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Starts `baton serve` on a free port; sets server_pid and base_url.
start_server() {
  local log="$1" attempt port
  for attempt in $(seq 1 20); do
    port=$((20000 + RANDOM % 40000))
    port_in_use "$port" && continue
    BATON_RATE_LIMIT_PER_SECOND=0 BATON_LOG="${SERVER_LOG:-warn}" BATON_VAULT_ACCEPT_RAW_CARD_DATA=true \
      "$baton" serve --listen "127.0.0.1:$port" --data-dir "$data_dir" >>"$log" 2>&1 &
    server_pid=$!
    base_url="http://127.0.0.1:$port"
    local i
    for i in $(seq 1 300); do
      if curl -fsS --max-time 1 "$base_url/healthz" >/dev/null 2>&1; then
        return 0
      fi
      if ! kill -0 "$server_pid" 2>/dev/null; then
        break # exited (port taken meanwhile?): try another port
      fi
      sleep 0.1
    done
    stop_server
    echo "attempt $attempt: the server did not answer /healthz; see $log" >&2
  done
  echo "could not start baton serve" >&2
  return 1
}

for backend in "${backends[@]}"; do
  echo "==> backend: $backend" >&2
  data_dir="$work/$backend"
  mkdir -p "$data_dir"
  unset DATABASE_URL BATON_MASTER_KEY
  if [[ "$backend" == postgres ]]; then
    pg_db="baton_bench_$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
    createdb --maintenance-db="$pg_admin_url/postgres" "$pg_db"
    export DATABASE_URL="$pg_admin_url/$pg_db"
    BATON_MASTER_KEY="$(head -c 32 /dev/urandom | base64)"
    export BATON_MASTER_KEY
  fi
  log="$results_dir/$stamp-$backend-server.log"
  key_json="$(BATON_LOG=warn "$baton" init --json --data-dir "$data_dir")"
  public_key="$(printf '%s' "$key_json" | sed -E 's/.*"publicKey":"([^"]+)".*/\1/')"
  private_key="$(printf '%s' "$key_json" | sed -E 's/.*"privateKey":"([^"]+)".*/\1/')"
  start_server "$log"
  echo "    server pid $server_pid at $base_url ($("$baton" --version))" >&2
  # Without autovacuum nothing gathers statistics, and the planner, which then knows
  # no table's size, may scan a whole tenant's rows for one. Stand in for autovacuum's
  # analyze, as on any PostgreSQL left at its defaults.
  analyze_every="${ANALYZE_EVERY:-5}"
  if [[ "$backend" == postgres && "$analyze_every" != 0 ]] &&
    [[ "$(psql "$DATABASE_URL" -Atc 'SHOW autovacuum')" == off ]]; then
    echo "    autovacuum is off on this server: ANALYZE every ${analyze_every}s while measuring" >&2
    (while sleep "$analyze_every"; do psql "$DATABASE_URL" -qc ANALYZE >/dev/null 2>&1 || true; done) &
    analyzer_pid=$!
  fi

  for c in $concurrency_levels; do
    out="$results_dir/$stamp-$backend-c$c.json"
    echo "==> $backend, $c connections, ${duration}s per scenario -> ${out#"$root"/}" >&2
    status=0
    BATON_BENCH_PRIVATE_KEY="$private_key" "$bench" \
      --base-url "$base_url" --public-key "$public_key" \
      --concurrency "$c" --duration "$duration" --warmup "$warmup" \
      ${BENCH_THREADS:+--threads "$BENCH_THREADS"} \
      --server-pid "$server_pid" --scenario "${SCENARIO:-all}" --json >"$out" || status=$?
    if [[ $status -ne 0 ]]; then
      failed_runs=$((failed_runs + 1))
      echo "!!  $backend c=$c: baton-bench exited with status $status (failed requests or error); see $out" >&2
    fi
    if command -v jq >/dev/null && [[ -s "$out" ]]; then
      jq -r --arg b "$backend" 'def pct: if . == null then "-" else "\(. | floor)%" end;
        .scenarios[] | [$b, "c=\(.concurrency)", .scenario, "\(.ratePerSec | floor)/s",
          "p50 \(.latencyMs.p50)ms", "p99 \(.latencyMs.p99)ms", "failed \(.failures)",
          "cpu: all \(.cpu.machineBusyPct | pct) server \(.cpu.serverPct | pct)",
          "bench \(.cpu.generatorPct | pct) other \(.cpu.otherPct | pct)"] | join("  ")' "$out"
    fi
  done

  stop_server
  drop_pg_db
done

if [[ $failed_runs -gt 0 ]]; then
  echo "$failed_runs run(s) had failed requests or errors: the figures above are not clean" >&2
  exit 1
fi
echo "results in ${results_dir#"$root"/}/$stamp-*" >&2
