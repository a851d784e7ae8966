#!/usr/bin/env bash
# The tensor package's tests for arm64 (the NEON and SDOT kernels against the
# pure-Go ones), plus `go vet` for arm64 (which checks the assembly's frames),
# and engine/model's integer-path tests (stories260K greedy tokens with SDOT).
# Under qemu the default CPU ("max") has FEAT_DotProd, so the dotprod set
# runs; the integer and ISA tests then run once more as a Cortex-A72
# (QEMU_CPU=cortex-a72: NEON without dotprod), where generation must fall
# back to the float32 kernels.
# On an arm64 host they run natively; elsewhere under qemu user emulation,
# installing Debian's qemu-user-static (apt-get) when no qemu-aarch64 is
# found. Under emulation only correctness means anything, not timings.
# With --prepare it only installs qemu when needed (the part that needs the
# network), so that `make test` can run the tests in a loopback-only network
# namespace (scripts/netns.sh).
# Usage: scripts/test-arm64.sh [--prepare] [go test flags…]
set -euo pipefail
cd "$(dirname "$0")/.."
PREPARE=""
if [ "${1:-}" = --prepare ]; then PREPARE=1; shift; fi
GO=${GO:-go}
PKG=./engine/tensor/
MODELPKG=./engine/model/
NODOT_RUN='Int8|Quantiz|ISA|SDOT'
export CGO_ENABLED=0
case "$(uname -m)" in
aarch64 | arm64)
  [ -z "$PREPARE" ] || exit 0
  GOARCH=arm64 $GO vet $PKG
  GOARCH=arm64 $GO test "$@" $PKG
  exec env GOARCH=arm64 $GO test -run Int8 "$@" $MODELPKG
  ;;
esac
QEMU=${QEMU:-}
if [ -z "$QEMU" ]; then
  QEMU=$(command -v qemu-aarch64-static || command -v qemu-aarch64 || true)
fi
if [ -z "$QEMU" ]; then
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo -n"
  echo "test-arm64: installing Debian's qemu-user-static (apt-get)"
  if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq qemu-user-static >/dev/null; }; then
    echo "test-arm64: FAILED to install qemu-user-static with apt-get: install the Debian package 'qemu-user-static' (or any qemu-aarch64) or set QEMU=/path/to/qemu-aarch64"
    exit 1
  fi
  QEMU=$(command -v qemu-aarch64-static)
fi
# GNU objdump for aarch64 lets TestSDOTEncodingsDisassemble check the
# WORD-encoded instructions; the test skips without it, so a failed install
# is only reported.
if ! command -v aarch64-linux-gnu-objdump >/dev/null; then
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo -n"
  echo "test-arm64: installing Debian's binutils-aarch64-linux-gnu (apt-get; for the encoding test)"
  { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq binutils-aarch64-linux-gnu >/dev/null; } ||
    echo "test-arm64: could not install binutils-aarch64-linux-gnu: TestSDOTEncodingsDisassemble will skip"
fi
[ -z "$PREPARE" ] || exit 0
GOARCH=arm64 $GO vet $PKG
echo "test-arm64: $PKG under $QEMU"
GOARCH=arm64 $GO test -exec "$QEMU" "$@" $PKG
echo "test-arm64: $MODELPKG (integer path) under $QEMU"
GOARCH=arm64 $GO test -exec "$QEMU" -run Int8 "$@" $MODELPKG
# go test's cache does not see QEMU_CPU (qemu reads it, not the tests): -count=1.
echo "test-arm64: $PKG as a Cortex-A72 (no dotprod: float32 fallback)"
QEMU_CPU=cortex-a72 GOARCH=arm64 $GO test -count=1 -exec "$QEMU" -run "$NODOT_RUN" "$@" $PKG
QEMU_CPU=cortex-a72 GOARCH=arm64 $GO test -count=1 -exec "$QEMU" -run TestInt8GenerationMatchesFloat "$@" $MODELPKG
