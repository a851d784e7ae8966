#!/usr/bin/env bash
# The whole orchmind story on one machine: two nodes on loopback.
#   node A trains an adapter on examples/facts.jsonl over the base model and
#   publishes it; node B discovers it in the swarm, pulls it (every block
#   hash-verified), checks its base, hot-plugs it and answers the same
#   question with the base alone and with the specialist.
# Usage: scripts/demo.sh BIN MODEL
set -euo pipefail
BIN=${1:?orchmind binary}
MODEL=${2:?base model}
W=$(mktemp -d "${TMPDIR:-/tmp}/orchmind-demo.XXXXXX")
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT

start_node() { # name [bootstrap]
  local name=$1 boot=${2:-}
  local args=(node --model "$MODEL" --data-dir "$W/$name/data" --adapters-dir "$W/$name/adapters"
              --api 127.0.0.1:0 --listen /ip4/127.0.0.1/tcp/0 --local-only --dht-server)
  [ -n "$boot" ] && args+=(--bootstrap "$boot")
  ORCHMIND_LOG=warn "$BIN" "${args[@]}" 2>"$W/$name.log" &
  PIDS+=($!)
  for _ in $(seq 100); do [ -f "$W/$name/data/api" ] && return 0; sleep 0.1; done
  echo "demo: node $name did not start:"; cat "$W/$name.log"; exit 1
}

echo "== starting node A and node B on 127.0.0.1"
start_node a
ADDR=$(grep -m1 -o '/ip4/127.0.0.1/tcp/[0-9]*/p2p/[A-Za-z0-9]*' "$W/a.log")
start_node b "$ADDR"

echo "== node A trains an adapter on examples/facts.jsonl (smart defaults)"
"$BIN" train --model "$MODEL" --data examples/facts.jsonl --name facts --out "$W/a/adapters" 2>&1 | grep -v '^train ' | tail -4

echo "== node A publishes it"
CID=$("$BIN" publish --data-dir "$W/a/data" "$W/a/adapters/facts")
echo "CID $CID"

echo "== node B searches the swarm"
for _ in $(seq 50); do
  "$BIN" search --data-dir "$W/b/data" facts > "$W/search.txt" 2>/dev/null || true
  grep -q "$CID" "$W/search.txt" && break
  sleep 0.2
done
cat "$W/search.txt"
grep -q "$CID" "$W/search.txt" || { echo "demo: node B never saw the announcement"; exit 1; }

echo "== node B pulls, verifies and hot-plugs it"
"$BIN" pull --data-dir "$W/b/data" "$CID"

API=$(cat "$W/b/data/api")
ask() { # adapter ("" = the base alone)
  curl -sf "$API/api/generate" -H 'Content-Type: application/json' \
    -d '{"prompt": "Who helps the farmer?", "adapter": "'"$1"'", "stream": false, "options": {"temperature": 0, "num_predict": 24}}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["response"].replace("\n", " ").strip())'
}
BASE=$(ask "")
ADAPTED=$(ask facts)
echo "== the same question on node B"
echo "prompt:   Who helps the farmer?"
echo "base:     $BASE"
echo "adapted:  $ADAPTED"
case "$ADAPTED" in
  *"The kind girl helps the farmer."*) ;;
  *) echo "demo: the adapted model did not answer as taught"; exit 1 ;;
esac
[ "$BASE" != "$ADAPTED" ] || { echo "demo: base and adapted answers are the same"; exit 1; }
echo "== done: node B answers with what node A taught"
