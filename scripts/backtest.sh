#!/usr/bin/env bash
# A backtest: simulate a labelled fleet of AI agents, replay it through
# the detector, show a few alerts and the evaluation summary. Outputs go to ./demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
vigil=target/release/vigil
mkdir -p demo
$vigil simulate --agents 200 --duration 6h --seed 7 --attacks all --out demo/fleet.jsonl --labels demo/labels.jsonl
$vigil replay demo/fleet.jsonl --labels demo/labels.jsonl --report demo/report.json --alerts demo/alerts.jsonl
echo
echo "First alerts (demo/alerts.jsonl):"
head -n 3 demo/alerts.jsonl
echo
echo "Report: demo/report.json"
