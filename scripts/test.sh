#!/usr/bin/env bash
# Installs what the tests need, then runs the whole suite: lint, types, unit, CLI, integration.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
python3 -m ruff check release tests benchmarks
python3 -m mypy
python3 -m pytest "$@"
