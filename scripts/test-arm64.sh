#!/usr/bin/env bash
# The tensor package's tests for arm64 (the NEON kernels against the pure-Go
# ones), plus `go vet` for arm64 (which checks the assembly's frames).
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
export CGO_ENABLED=0
case "$(uname -m)" in
aarch64 | arm64)
  [ -z "$PREPARE" ] || exit 0
  GOARCH=arm64 $GO vet $PKG
  exec env GOARCH=arm64 $GO test "$@" $PKG
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
[ -z "$PREPARE" ] || exit 0
GOARCH=arm64 $GO vet $PKG
echo "test-arm64: $PKG under $QEMU"
GOARCH=arm64 $GO test -exec "$QEMU" "$@" $PKG
