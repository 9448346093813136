#!/usr/bin/env bash
# The learned models' evaluation in models/README.md: train on a normal fleet of one seed, replay
# attacked fleets of other seeds with and without the models, and print recall per attack type,
# precision, and which attack windows the model's own alerts match. Outputs go to ./eval-models/.
# Needs python3 (only to add up the reports). Usage: scripts/eval-models.sh [SEED...] (default 7 1234 99 2026)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
vigil="$PWD/target/release/vigil"
[ -n "${CARGO_TARGET_DIR:-}" ] && vigil="$CARGO_TARGET_DIR/release/vigil"
seeds=("${@:-7 1234 99 2026}")
seeds=(${seeds[*]})
mkdir -p eval-models
cd eval-models
$vigil simulate --agents 200 --duration 24h --seed 42 --attacks none --out normal-42.jsonl
$vigil train --out models normal-42.jsonl
for s in "${seeds[@]}"; do
  $vigil simulate --agents 200 --duration 24h --seed "$s" --attacks all --out "fleet-$s.jsonl" --labels "labels-$s.jsonl"
  $vigil replay --labels "labels-$s.jsonl" --report "without-$s.json" --alerts "without-$s.alerts.jsonl" "fleet-$s.jsonl"
  $vigil replay --models models --labels "labels-$s.jsonl" --report "with-$s.json" --alerts "with-$s.alerts.jsonl" "fleet-$s.jsonl"
done
python3 - "${seeds[@]}" <<'PY'
import json, sys
from datetime import datetime

def ts(x):
    return x / 1000 if isinstance(x, (int, float)) else datetime.fromisoformat(x.replace("Z", "+00:00")).timestamp()

def load(f):
    return [json.loads(l) for l in open(f)]

def matches(a, l):  # spec/evaluation.md, grace 60 s
    t = ts(a["ts"])
    return (a["agent_id"] == l["agent_id"] and ("session_id" not in l or a.get("session_id") == l["session_id"])
            and ts(l["start"]) <= t <= ts(l["end"]) + 60)

rows, tot = {}, {}
for s in sys.argv[1:]:
    labels = load(f"labels-{s}.jsonl")
    for tag in ("without", "with"):
        r = json.load(open(f"{tag}-{s}.json"))
        t = tot.setdefault(tag, [0, 0, 0, 0])
        t[0] += r["detected"]; t[1] += r["attacks"]; t[2] += r["alerts"] - r["false_alerts"]; t[3] += r["alerts"]
        print(f"seed {s} {tag:7} models: recall {r['recall']:.3f} precision {r['precision']:.3f} "
              f"alerts {r['alerts']} false {r['false_alerts']}")
        for k, v in r["by_attack"].items():
            row = rows.setdefault(k, {"n": 0, "without": 0, "with": 0, "model": 0, "delay": {"without": [], "with": []}})
            row[tag] += v["detected"]
            if tag == "with":
                row["n"] += v["attacks"]
            if v["delay_s_mean"] is not None:
                row["delay"][tag].append((v["delay_s_mean"], v["detected"]))
    model = [a for a in load(f"with-{s}.alerts.jsonl") if a["detector"] == "model:window"]
    for l in labels:
        rows[l["attack"]]["model"] += any(matches(a, l) for a in model)

def mean(d):
    n = sum(w for _, w in d)
    return f"{sum(m * w for m, w in d) / n:.0f}" if n else "-"

print("\n| attack type | windows | detected without models | detected with models | matched by `model:window` alerts | mean delay without / with (s) |")
print("|---|---:|---:|---:|---:|---:|")
for k in sorted(rows):
    r = rows[k]
    print(f"| {k} | {r['n']} | {r['without']} | {r['with']} | {r['model']} | {mean(r['delay']['without'])} / {mean(r['delay']['with'])} |")
for tag in ("without", "with"):
    d, n, ta, a = tot[tag]
    print(f"| **all, {tag} models** | {n} | recall {d}/{n} = {d / n:.3f} | | precision {ta}/{a} = {ta / a:.3f} | |")
PY
