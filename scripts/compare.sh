#!/usr/bin/env bash
# The whole per-record comparison in one command: native Rust, Flowgate
# (single calls and batches), regorus and Cedar from the main workspace,
# Extism from its own (it pins another wasmtime), then the chart.
# Extra arguments go to both criterion runs, e.g. `--measurement-time 3`.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench -p flowgate --bench evaluate -- "$@"
# Extism's own agreement test first (10,000 records decided alike by its
# plugin and by Flowgate): it builds another wasmtime, about 24 minutes
# from cold, so it runs here rather than in CI.
cargo test --release --manifest-path host/benches/extism/Cargo.toml
cargo bench --manifest-path host/benches/extism/Cargo.toml -- "$@"
python3 scripts/chart.py
