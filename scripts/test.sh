#!/usr/bin/env bash
# The whole test suite: unit, property, golden and integration tests of every crate.
# Usage: scripts/test.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --release "$@"
