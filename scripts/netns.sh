#!/usr/bin/env bash
# Runs a command in a fresh network namespace whose only interface is
# loopback (up), so nothing it starts can send a packet off this machine:
# `make test` and `make demo` run the Go tests, the demo and the browser test
# this way. Everything that downloads (Go modules, apt-get, npm) must have
# run before, outside; inside, GOPROXY=off turns a missing Go module into a
# clear error instead of a failed dial.
#
# `unshare --net` needs root (CI runs as root); otherwise an unprivileged
# user namespace is tried (`unshare --user --map-root-user --net`). Where
# neither works, or neither `ip` nor python3 is there, it says so in one line and
# runs the command as it is. ORCHMIND_NETNS=off skips the namespace (for
# tracing what a command would send, see docs/offline.md); inside one
# already (ORCHMIND_IN_NETNS=1) the command just runs.
# Usage: scripts/netns.sh COMMAND [ARGS…]
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: scripts/netns.sh COMMAND [ARGS…]" >&2; exit 2; }
if [ "${ORCHMIND_IN_NETNS:-}" = 1 ]; then
  exec "$@"
fi
if [ "${ORCHMIND_NETNS:-}" = off ]; then
  echo "netns: ORCHMIND_NETNS=off: running without a loopback-only network namespace" >&2
  exec "$@"
fi
# Loopback comes up with iproute2's ip, or else with python3 (SIOCSIFFLAGS:
# IFF_UP|IFF_LOOPBACK|IFF_RUNNING on "lo").
if command -v ip >/dev/null; then
  LOUP='ip link set lo up'
elif command -v python3 >/dev/null; then
  LOUP='python3 -c "import socket, fcntl, struct; fcntl.ioctl(socket.socket(), 0x8914, struct.pack(\"16sh\", b\"lo\", 0x49))"'
else
  echo "netns: neither 'ip' (iproute2) nor python3 is installed to bring loopback up: running without a loopback-only network namespace" >&2
  exec "$@"
fi
# The inner shell brings loopback up, then replaces itself with the command.
inner="$LOUP"' && ORCHMIND_IN_NETNS=1 GOPROXY=off exec "$@"'
err=$(unshare --net true 2>&1) && exec unshare --net -- bash -c "$inner" netns "$@"
if uerr=$(unshare --user --map-root-user --net true 2>&1); then
  exec unshare --user --map-root-user --net -- bash -c "$inner" netns "$@"
fi
echo "netns: network namespaces are not available here (unshare --net: ${err:-failed}; as a user: ${uerr:-failed}): running without one" >&2
exec "$@"
