#!/usr/bin/env bash
# Runs one scenario against two builds of Baton, alternately, and prints each build's
# rate per round and the ratio after/before: the before and after of a change in one
# command, on the same machine at the same time.
#
# Usage: bench/compare.sh BEFORE AFTER [sqlite|postgres|all]     (default: sqlite)
#
# BEFORE and AFTER are each a `baton` binary (a path) or a git revision of this
# repository (built once, in release mode, into $COMPARE_DIR/baton-<commit>; its source
# is checked out in a detached worktree under $COMPARE_DIR/src, kept for the next build).
# The generator (`baton-bench`) is this tree's release build for both, so both builds
# get exactly the same requests.
#
# Rounds run before, after, then after, before (and so on), each on a fresh database,
# so a drift in the machine's load weighs on both alike.
#
# Settings (environment), besides those of bench/run.sh (DURATION, WARMUP, PG_ADMIN_URL…):
#   SCENARIO     the baton-bench scenario            (default: orders)
#   CONCURRENCY  one connection count                (default: 16)
#   ROUNDS       runs of each build                  (default: 3)
#   COMPARE_DIR  where revisions are built           (default: $CARGO_TARGET_DIR/compare,
#                                                     or target/compare)
#   SKIP_BUILD=1 use this tree's baton-bench as it is built
set -euo pipefail

[[ $# -ge 2 ]] || { sed -n '2,25p' "$0" >&2; exit 64; }
before_arg="$1"
after_arg="$2"
backend_arg="${3:-sqlite}"
case "$backend_arg" in
  sqlite | postgres) backends=("$backend_arg") ;;
  all) backends=(sqlite postgres) ;;
  *) echo "usage: $0 BEFORE AFTER [sqlite|postgres|all]" >&2; exit 64 ;;
esac

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
compare_dir="${COMPARE_DIR:-$target_dir/compare}"
scenario="${SCENARIO:-orders}"
concurrency="${CONCURRENCY:-16}"
rounds="${ROUNDS:-3}"
results_dir="$root/bench/results"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$compare_dir" "$results_dir"
command -v jq >/dev/null || { echo "compare.sh needs jq" >&2; exit 1; }
[[ "$concurrency" =~ ^[0-9]+$ ]] || { echo "CONCURRENCY must be one number" >&2; exit 64; }

# Prints the path of a baton binary for a path or a git revision.
binary_for() {
  local arg="$1" commit src
  if [[ -f "$arg" && -x "$arg" ]]; then
    realpath "$arg"
    return
  fi
  commit="$(git rev-parse --verify --quiet "$arg^{commit}")" || {
    echo "$arg is neither an executable nor a git revision" >&2
    return 1
  }
  local bin="$compare_dir/baton-${commit:0:12}"
  if [[ ! -x "$bin" ]]; then
    src="$compare_dir/src"
    if [[ -d "$src" ]]; then
      git -C "$src" checkout --quiet --detach "$commit"
    else
      git worktree add --quiet --detach "$src" "$commit"
    fi
    echo "==> building $arg (${commit:0:12}) in $src" >&2
    (cd "$src" && CARGO_TARGET_DIR="$compare_dir/target" cargo build --release -p baton >&2)
    cp "$compare_dir/target/release/baton" "$bin"
  fi
  echo "$bin"
}

before_bin="$(binary_for "$before_arg")"
after_bin="$(binary_for "$after_arg")"
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  echo "==> building baton-bench (release; target dir $target_dir)" >&2
  cargo build --release -p baton-bench
fi
echo "==> before: $before_arg ($before_bin: $("$before_bin" --version))" >&2
echo "==> after:  $after_arg ($after_bin: $("$after_bin" --version))" >&2

summary="$results_dir/$stamp-compare.tsv"
printf 'backend\tround\tbuild\trate\tp50_ms\tp99_ms\tserver_pct\tother_pct\tmachine_pct\tload1\n' >"$summary"

# Runs one build once; appends its line to the summary.
run_one() {
  local backend="$1" round="$2" label="$3" bin="$4" run_stamp out load1
  run_stamp="$stamp-r$round-$label"
  load1="$(cut -d' ' -f1 /proc/loadavg)"
  STAMP="$run_stamp" BATON_BIN="$bin" SKIP_BUILD=1 SCENARIO="$scenario" CONCURRENCY="$concurrency" \
    "$root/bench/run.sh" "$backend" >/dev/null 2>"$results_dir/$run_stamp.log" || {
    echo "!!  round $round ($label) failed; see $results_dir/$run_stamp.log" >&2
    return 1
  }
  out="$results_dir/$run_stamp-$backend-c$concurrency.json"
  jq -r --arg b "$backend" --arg r "$round" --arg l "$label" --arg load "$load1" '
    .scenarios[0] | [$b, $r, $l, (.ratePerSec | floor), .latencyMs.p50, .latencyMs.p99,
      (.cpu.serverPct // "-"), (.cpu.otherPct // "-"), (.cpu.machineBusyPct // "-"), $load] | @tsv' \
    "$out" | tee -a "$summary" >&2
}

for backend in "${backends[@]}"; do
  echo "==> $backend: $scenario, $concurrency connections, $rounds rounds of each build" >&2
  for round in $(seq 1 "$rounds"); do
    if ((round % 2)); then
      run_one "$backend" "$round" before "$before_bin"
      run_one "$backend" "$round" after "$after_bin"
    else
      run_one "$backend" "$round" after "$after_bin"
      run_one "$backend" "$round" before "$before_bin"
    fi
  done
done

# Per backend: each build's rates (min–max, median) and after/before, per round and of
# the medians.
awk -F'\t' '
  NR == 1 { next }
  { rate[$1, $3, $2] = $4; n[$1, $3]++; backends[$1] = 1; rounds[$1] = ($2 > rounds[$1] ? $2 : rounds[$1])
    cpu[$1, $3] = cpu[$1, $3] " " int($7) "%"; other[$1, $3] = other[$1, $3] " " int($8) "%" }
  function median(b, l,    i, k, v, t, m) {
    m = 0
    for (i = 1; i <= rounds[b]; i++) if ((b, l, i) in rate) v[++m] = rate[b, l, i]
    for (i = 1; i <= m; i++) for (k = i + 1; k <= m; k++) if (v[k] < v[i]) { t = v[i]; v[i] = v[k]; v[k] = t }
    lo[b, l] = v[1]; hi[b, l] = v[m]
    return (m % 2) ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2
  }
  END {
    for (b in backends) {
      mb = median(b, "before"); ma = median(b, "after")
      printf "\n%s: after/before per round:", b
      for (i = 1; i <= rounds[b]; i++) printf " %.2f", rate[b, "after", i] / rate[b, "before", i]
      printf "\n  before %d–%d/s (median %d), server CPU%s, other%s\n", lo[b, "before"], hi[b, "before"], mb, cpu[b, "before"], other[b, "before"]
      printf "  after  %d–%d/s (median %d), server CPU%s, other%s\n", lo[b, "after"], hi[b, "after"], ma, cpu[b, "after"], other[b, "after"]
      printf "  ratio of medians after/before: %.2f\n", ma / mb
    }
  }' "$summary"
echo "rounds in ${summary#"$root"/}" >&2
