#!/usr/bin/env bash
# CI: the core installs without torch (`pip install .`, no extras) and evaluates a model behind an
# OpenAI-compatible server on loopback (the test tooling's mock server, run by the full venv).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
work=$(mktemp -d)
trap 'kill "${server:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT
python3 -m venv "$work/core"
"$work/core/bin/python" -m pip install -q --upgrade pip
"$work/core/bin/python" -m pip install -q . > "$work/pip.log" 2>&1 || { cat "$work/pip.log"; exit 1; }
for heavy in torch transformers trl; do
  if "$work/core/bin/python" -c "import $heavy" 2>/dev/null; then
    echo "core install: $heavy got installed with the core; it belongs in the [train] extra"; exit 1
  fi
done
.venv/bin/python -m tools.testing.mock_server --port 0 --answer reverse_text > "$work/server.log" &
server=$!
for _ in $(seq 50); do grep -q "listening on" "$work/server.log" 2>/dev/null && break; sleep 0.2; done
url=$(sed -n 's/^listening on //p' "$work/server.log")
"$work/core/bin/haystack-rl" eval reverse_text --model mock --base-url "$url" -n 4 -r 2 -o "$work/out" > "$work/eval.log"
"$work/core/bin/python" - "$work/out/metadata.json" <<'PY'
import json, sys
summary = json.load(open(sys.argv[1]))["summary"]
assert summary["n"] == 8 and summary["reward_mean"] == 1.0 and summary["errors"] == 0, summary
PY
echo "ci: the core (no torch) evaluated against a loopback server in $((SECONDS - start)) s"
