#!/bin/sh
# Generation beside llama.cpp on the same GGUF and thread count.
#
# usage: scripts/llama_cpp_bench.sh [THREADS] [MODEL-PATTERN] [REPS]
#   e.g. scripts/llama_cpp_bench.sh 1 stories15M/Q8_0 3
#
# Installs npm node-llama-cpp 3.21.1 (prebuilt llama.cpp with one CPU
# library per ISA, chosen at run time) into $ORCHMIND_CACHE (default
# ~/.cache/orchmind/node-llama-cpp-3.21.1) once; writes the benchmark GGUFs
# of orchmind's BenchmarkInference (random weights) into a temporary
# folder while orchmind measures them with GOMAXPROCS=THREADS, then runs
# llama.cpp on the very same files with THREADS threads; REPS rounds of
# both, alternated, so both see the same load on a shared machine. At 2 threads on a
# 2-core machine llama.cpp's spinning pool fights node's own threads
# (/work/shared/notes/references.md): compare at 1 thread there too.
# With ORCHMIND_BASE_REV set (a git revision, e.g. main), orchmind as of
# that revision runs too, in every round, before the working tree's.
set -eu
threads=${1:-1}
pattern=${2:-stories15M/Q8_0}
reps=${3:-3}
cache=${ORCHMIND_CACHE:-$HOME/.cache/orchmind/node-llama-cpp-3.21.1}
root=$(cd "$(dirname "$0")/.." && pwd)
if [ ! -d "$cache/node_modules/node-llama-cpp" ]; then
	mkdir -p "$cache"
	[ -f "$cache/package.json" ] || echo '{"private":true}' >"$cache/package.json"
	(cd "$cache" && npm i -E node-llama-cpp@3.21.1 --no-audit --no-fund >/dev/null)
fi
# A copy per run (it must sit beside node_modules): runs of other
# checkouts at the same time keep their own.
mjs=llama_cpp_bench.$$.mjs
cp "$root/scripts/llama_cpp_bench.mjs" "$cache/$mjs"
dir=$(mktemp -d)
trap 'rm -rf "$dir" "$cache/$mjs"' EXIT
echo "# CPU sets: $(cd "$root" && go run ./engine/tensor/internal/isas); ORCHMIND_ISA=${ORCHMIND_ISA:-best}; $threads threads; $reps alternated rounds"
(cd "$root" && go test -c -o "$dir/model.test" ./engine/model/)
base=${ORCHMIND_BASE_REV:-}
if [ -n "$base" ]; then
	mkdir "$dir/base"
	git -C "$root" archive "$base" | tar -x -C "$dir/base"
	(cd "$dir/base" && go test -c -o "$dir/base.test" ./engine/model/)
fi
r=0
while [ "$r" -lt "$reps" ]; do
	r=$((r + 1))
	if [ -n "$base" ]; then
		echo "## round $r: orchmind $base (GOMAXPROCS=$threads)"
		(cd "$root/engine/model" && ORCHMIND_BENCH_GGUF_DIR="$dir" GOMAXPROCS=$threads "$dir/base.test" -test.run '^$' \
			-test.bench "Inference/$pattern" -test.benchtime 3x | grep '^Benchmark')
	fi
	echo "## round $r: orchmind (GOMAXPROCS=$threads)"
	(cd "$root/engine/model" && ORCHMIND_BENCH_GGUF_DIR="$dir" GOMAXPROCS=$threads "$dir/model.test" -test.run '^$' \
		-test.bench "Inference/$pattern" -test.benchtime 3x | grep '^Benchmark')
	for f in "$dir"/*.gguf; do
		echo "## round $r: llama.cpp (node-llama-cpp 3.21.1), $threads threads, $(basename "$f")"
		(cd "$cache" && node "$mjs" "$f" "$threads" 1)
	done
done
