#!/usr/bin/env bash
# Throughput harness: parse-ceiling vs `vigil replay` on the same simulated file, pinned to cores,
# interleaved repeated runs, medians.
#
# Usage: benches/throughput.sh [FILE] [RUNS]
#   FILE  JSON Lines to replay (default /tmp/v/big.jsonl; generated with `vigil simulate` when missing:
#         2,000 agents, 1,000,000 events, seed 42, every attack type: the file the figures in README.md were measured on)
#   RUNS  interleaved runs of each configuration (default 5)
# Environment:
#   VIGIL          the vigil binary (default: built here, release, into $CARGO_TARGET_DIR or target/)
#   PARSE_CEILING  the parse-ceiling binary (default: built from ../shared/tools/parse-ceiling into the
#                  same target directory)
#   CORES          the two cores to use (default "0 1"); single-core runs use the first
#
# Prints one line per run and a summary: median events/s of each configuration, replay as a fraction
# of the parse ceiling (single core), and the two-core speed-up. Timings are wall clock around each
# process (start-up included; it is a few milliseconds).
set -euo pipefail
cd "$(dirname "$0")/.."
FILE=${1:-/tmp/v/big.jsonl}
RUNS=${2:-5}
read -r C0 C1 <<<"${CORES:-0 1}"
TARGET=${CARGO_TARGET_DIR:-$PWD/target}

if [[ -z "${VIGIL:-}" ]]; then
    cargo build --release --quiet --bin vigil
    VIGIL=$TARGET/release/vigil
fi
if [[ -z "${PARSE_CEILING:-}" ]]; then
    PC_SRC=${PC_SRC:-$PWD/../shared/tools/parse-ceiling}
    [[ -d $PC_SRC ]] || PC_SRC=/work/shared/tools/parse-ceiling
    CARGO_TARGET_DIR=$TARGET cargo build --release --quiet --manifest-path "$PC_SRC/Cargo.toml"
    PARSE_CEILING=$TARGET/release/parse-ceiling
fi
if [[ ! -s $FILE ]]; then
    echo "generating $FILE" >&2
    mkdir -p "$(dirname "$FILE")"
    "$VIGIL" simulate --agents 2000 --events 1000000 --seed 42 --attacks all --out "$FILE" \
        --labels "${FILE%.jsonl}.labels.jsonl"
fi
EVENTS=$(wc -l <"$FILE")
SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT
cat "$FILE" >/dev/null # warm the page cache

now() { date +%s%N; }
# run NAME CMD...: runs CMD, prints and records events/s by wall clock, and the CPU time (user + sys)
# the process used (on a shared machine the CPU time is far less disturbed by other load than the
# wall clock; for a pinned single-threaded run, events / CPU seconds is the rate with the core to itself).
run() {
    local name=$1
    shift
    local t0 t1
    t0=$(now)
    /usr/bin/time -f '%U %S' -o "$SCRATCH/cpu" "$@" >/dev/null 2>"$SCRATCH/err" || { cat "$SCRATCH/err" >&2; exit 1; }
    t1=$(now)
    local rate cpu
    rate=$(awk -v n="$EVENTS" -v ns=$((t1 - t0)) 'BEGIN { printf "%.0f", n / (ns / 1e9) }')
    cpu=$(awk '{ printf "%.2f", $1 + $2 }' "$SCRATCH/cpu")
    printf '%-22s %8.3f s %10s events/s   cpu %6s s   load %s\n' "$name" \
        "$(awk -v ns=$((t1 - t0)) 'BEGIN { print ns / 1e9 }')" "$rate" "$cpu" "$(cut -d' ' -f1 /proc/loadavg)"
    echo "$rate" >>"$SCRATCH/$name"
    echo "$cpu" >>"$SCRATCH/$name.cpu"
}

for i in $(seq 1 "$RUNS"); do
    echo "--- run $i/$RUNS" >&2
    run parse_ceiling_1core taskset -c "$C0" "$PARSE_CEILING" "$FILE"
    run replay_1thread taskset -c "$C0" "$VIGIL" replay --threads 1 --alerts /dev/null \
        --dead-letter "$SCRATCH/rejected.jsonl" "$FILE"
    run replay_2threads taskset -c "$C0,$C1" "$VIGIL" replay --threads 2 --alerts /dev/null \
        --dead-letter "$SCRATCH/rejected.jsonl" "$FILE"
done

median() { sort -n "$SCRATCH/$1" | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
best() { sort -n "$SCRATCH/$1" | tail -n 1; }
PC=$(median parse_ceiling_1core)
R1=$(median replay_1thread)
R2=$(median replay_2threads)
PCC=$(median parse_ceiling_1core.cpu)
R1C=$(median replay_1thread.cpu)
R2C=$(median replay_2threads.cpu)
echo "=== medians of $RUNS runs, $EVENTS events ($FILE)"
printf 'parse-ceiling, 1 core:   %10.0f events/s  (best %s; by CPU time %.0f events/s)\n' "$PC" "$(best parse_ceiling_1core)" "$(awk -v n="$EVENTS" -v c="$PCC" 'BEGIN { print n / c }')"
printf 'vigil replay, 1 core:    %10.0f events/s  (%.1f%% of the parse ceiling; best %s; by CPU time %.0f events/s, %.1f%%)\n' "$R1" \
    "$(awk -v a="$R1" -v b="$PC" 'BEGIN { print 100 * a / b }')" "$(best replay_1thread)" \
    "$(awk -v n="$EVENTS" -v c="$R1C" 'BEGIN { print n / c }')" "$(awk -v a="$PCC" -v b="$R1C" 'BEGIN { print 100 * a / b }')"
printf 'vigil replay, 2 cores:   %10.0f events/s  (%.2fx one core; best %s; CPU %.2f s vs %.2f s on one thread)\n' "$R2" \
    "$(awk -v a="$R2" -v b="$R1" 'BEGIN { print a / b }')" "$(best replay_2threads)" "$R2C" "$R1C"
