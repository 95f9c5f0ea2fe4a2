#!/usr/bin/env bash
# mcpguard under load: the release webhook and an echo baseline, both over rustls on
# loopback, driven by a closed-loop HTTP/1.1 keep-alive client (see benches/load.rs).
#
#   benches/load.sh                      # the full run (~3 minutes)
#   LOAD_CONNECTIONS=16 LOAD_SECONDS=3 benches/load.sh
#   LOAD_MODE=hostile LOAD_CONNECTIONS=16 benches/load.sh   # 10% hostile requests
#
# Progress goes to stderr; the markdown summary to stdout and target/load-report.md.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --bin mcpguard
mkdir -p target
cargo bench --bench load | tee target/load-report.md
