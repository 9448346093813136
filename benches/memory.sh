#!/usr/bin/env bash
# Memory harness: peak RSS of `vigil replay` as the number of active agents grows, the per-agent
# figure, and a flood of distinct agent ids against the `max_agents` cap.
#
# Usage: benches/memory.sh
# Environment: VIGIL (the vigil binary; default: built here, release), EVENTS (default 1000000).
#
# 1. Simulated fleets of 1,000 / 10,000 / 100,000 / 1,000,000 agents, EVENTS events each, piped from
#    `vigil simulate` into `vigil replay -` (no --report, no --scores, alerts to /dev/null, one thread).
#    Per agent = (peak RSS at 100,000 agents - peak RSS at 1,000) / 99,000 (the issue's definition).
# 2. A flood: 1,000,000 events from 1,000,000 distinct agent ids with `max_agents = 10000`, replayed
#    whole and cut after its first 100,000 events: the two peaks must be equal (state is capped).
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${EVENTS:-1000000}
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
if [[ -z "${VIGIL:-}" ]]; then
    cargo build --release --quiet --bin vigil
    VIGIL=$TARGET/release/vigil
fi
SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT

# peak_kib CMD...: peak RSS of the last process of a pipeline run under /usr/bin/time.
peak_kib() {
    "$@" 2>"$SCRATCH/time" >/dev/null || { cat "$SCRATCH/time" >&2; exit 1; }
    awk -F': ' '/Maximum resident set size/ { print $2 }' "$SCRATCH/time"
}
replay() { /usr/bin/time -v "$VIGIL" replay --threads 1 --alerts /dev/null --dead-letter "$SCRATCH/rej.jsonl" "$@"; }

declare -A RSS
for agents in 1000 10000 100000 1000000; do
    RSS[$agents]=$(peak_kib bash -c "'$VIGIL' simulate --agents $agents --events $EVENTS --seed 1 --attacks none \
        | /usr/bin/time -v '$VIGIL' replay --threads 1 --alerts /dev/null --dead-letter '$SCRATCH/rej.jsonl' -")
    printf '%8d agents, %d events: peak RSS %8d KiB\n' "$agents" "$EVENTS" "${RSS[$agents]}"
done
awk -v a="${RSS[100000]}" -v b="${RSS[1000]}" \
    'BEGIN { printf "per agent: (%d - %d) KiB / 99,000 = %.0f bytes (%.2f KiB)\n", a, b, (a - b) * 1024 / 99000, (a - b) / 99000 }'

# The flood: distinct ids, the tracked-agent cap at 10,000.
printf '[engine]\nmax_agents = 10000\n' >"$SCRATCH/flood.toml"
flood() {
    awk -v n="$1" 'BEGIN { for (i = 0; i < n; i++) printf "{\"ts\": %d, \"agent_id\": \"flood-%07d\", \"kind\": \"tool_call\", \"tool\": \"search\", \"args\": {\"q\": \"query %d\"}}\n", 1767225600000 + i, i, i }'
}
flood 1000000 >"$SCRATCH/flood.jsonl"
head -n 100000 "$SCRATCH/flood.jsonl" >"$SCRATCH/flood100k.jsonl"
F1=$(peak_kib replay --config "$SCRATCH/flood.toml" "$SCRATCH/flood100k.jsonl")
F2=$(peak_kib replay --config "$SCRATCH/flood.toml" "$SCRATCH/flood.jsonl")
printf 'flood, max_agents 10000: first 100,000 events %d KiB, all 1,000,000 events %d KiB\n' "$F1" "$F2"
