#!/usr/bin/env bash
# The whole test suite: unit, property, golden and integration tests of every crate, including the
# live detector's Kafka tests against a real Kafka-compatible broker (tansu, in memory) that this
# script installs when missing, starts on a free loopback port and stops on exit.
#
# Usage: scripts/test.sh [extra cargo test args]
#   VIGIL_TEST_KAFKA_BROKERS=host:port  use that broker instead of starting one
#   VIGIL_TEST_KAFKA=off                run without a broker (the Kafka tests then say so and pass)
set -euo pipefail
cd "$(dirname "$0")/.."

start_broker() {
    local tansu="${CARGO_HOME:-$HOME/.cargo}/bin/tansu"
    if ! command -v tansu >/dev/null 2>&1 && [ ! -x "$tansu" ]; then
        echo "== installing the tansu broker (once; about 16 minutes on a fresh machine)"
        cargo install tansu --locked --features dynostore
    fi
    command -v tansu >/dev/null 2>&1 && tansu="$(command -v tansu)"
    local port
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    local log
    log="$(mktemp -t tansu.XXXXXX.log)"
    "$tansu" broker --listener-url "tcp://127.0.0.1:$port" --advertised-listener-url "tcp://127.0.0.1:$port" \
        --storage-engine memory://tansu/ >"$log" 2>&1 &
    BROKER_PID=$!
    trap 'kill "$BROKER_PID" 2>/dev/null || true' EXIT
    for _ in $(seq 1 100); do
        if python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null; then
            echo "== tansu broker on 127.0.0.1:$port (log: $log)"
            export VIGIL_TEST_KAFKA_BROKERS="127.0.0.1:$port"
            export VIGIL_TEST_REQUIRE_KAFKA=1
            return
        fi
        sleep 0.1
    done
    echo "tansu did not start:" >&2
    cat "$log" >&2
    exit 1
}

if [ "${VIGIL_TEST_KAFKA:-on}" != "off" ]; then
    if [ -n "${VIGIL_TEST_KAFKA_BROKERS:-}" ]; then
        export VIGIL_TEST_REQUIRE_KAFKA=1
    else
        start_broker
    fi
fi

cargo test --workspace --profile test-release "$@"
