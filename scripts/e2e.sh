#!/usr/bin/env bash
# Browser test of the web UI: installs Debian chromium and playwright-core
# (pinned in node/ui/e2e/package-lock.json) when missing, then drives
# upload → plan → train → chat → adapters list, then hostile pages (another
# loopback origin, a sandboxed frame) post at the API and must all be
# refused (docs/security.md); then the first-run page (firstrun.mjs: a fresh
# data folder, a local Ollama store, a pull from a fake registry with
# progress). Screenshots: artifacts/e2e/.
# With --prepare it only installs (the part that needs the network), so that
# `make e2e` can run the test itself in a loopback-only network namespace
# (scripts/netns.sh); without, it installs what is missing, then runs.
# Usage: scripts/e2e.sh [--prepare] BIN MODEL
set -euo pipefail
PREPARE=""
if [ "${1:-}" = --prepare ]; then PREPARE=1; shift; fi
BIN=${1:?orchmind binary}
MODEL=${2:?base model}
if [ ! -e "$MODEL" ]; then
  echo "e2e: SKIPPED: no base model at $MODEL (put shared/ beside the repo or set ORCHMIND_MODEL)"
  exit 0
fi
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$CHROMIUM" ]; then
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo -n"
  echo "e2e: installing Debian's chromium (apt-get)"
  if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null; }; then
    echo "e2e: FAILED to install chromium with apt-get: install the Debian package 'chromium' or set CHROMIUM=/path/to/chromium"
    exit 1
  fi
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "e2e: FAILED: Node.js and npm are needed for the browser test"
  exit 1
fi
# npm ci only when the installed playwright-core is not the locked one.
want=$(node -p 'require("./node/ui/e2e/package-lock.json").packages["node_modules/playwright-core"].version')
have=$(node -p 'require("./node/ui/e2e/node_modules/playwright-core/package.json").version' 2>/dev/null || true)
if [ "$want" != "$have" ]; then
  ( cd node/ui/e2e && npm ci --no-audit --no-fund --silent )
fi
[ -z "$PREPARE" ] || exit 0
CHROMIUM="$CHROMIUM" node node/ui/e2e/e2e.mjs "$BIN" "$MODEL" examples/facts.jsonl artifacts/e2e
CHROMIUM="$CHROMIUM" node node/ui/e2e/firstrun.mjs "$BIN" "$MODEL" artifacts/e2e
