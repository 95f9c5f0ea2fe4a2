#!/usr/bin/env bash
# mcpguard's peak memory per endpoint × operation × review size (README, "Memory and limits"):
# each cell a fresh release `mcpguard serve` with its default limits, fed over TLS on loopback
# by benches/load.rs in LOAD_MODE=memory (see benches/support/memory.rs).
#
#   benches/memory.sh          # ~2 minutes
#
# Progress goes to stderr; the markdown table to stdout and target/memory-report.md.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --bin mcpguard
mkdir -p target
LOAD_MODE=memory cargo bench --bench load | tee target/memory-report.md
