#!/usr/bin/env bash
# Shows what a command tries to send off this machine. It runs the command
# under `strace -f -e trace=connect,sendto,sendmsg` in a fresh network
# namespace that looks like a LAN — loopback, plus a veth pair with the
# address 192.0.2.99/24 and a default route via 192.0.2.1 — so that router
# discovery, multicast and gateway traffic are attempted (and visible)
# instead of failing for want of a route; every packet stays inside the
# namespace. Then it counts the calls by destination: loopback, local
# (unix and netlink sockets), already-connected sockets, and anything else,
# which is listed. Needs root (or unprivileged user namespaces), iproute2
# and strace. Exit status: the command's, or 3 when something went beyond
# loopback.
# Inside, ORCHMIND_NETNS=off keeps scripts/netns.sh from hiding the attempts
# in a loopback-only namespace of its own (set ORCHMIND_NETNS=on to trace
# the two together).
# Usage: scripts/egress.sh LOG COMMAND [ARGS…]   (the raw trace goes to LOG)
set -euo pipefail
LOG=${1:?trace file}
shift
[ $# -gt 0 ] || { echo "usage: scripts/egress.sh LOG COMMAND [ARGS…]" >&2; exit 2; }
for tool in strace ip unshare python3; do
  command -v $tool >/dev/null || { echo "egress: $tool is needed (Debian: strace, iproute2, util-linux, python3)" >&2; exit 2; }
done
[ "${ORCHMIND_NETNS:-}" = on ] && unset ORCHMIND_NETNS || export ORCHMIND_NETNS=off
USERNS=()
unshare --net true 2>/dev/null || USERNS=(--user --map-root-user)
rc=0
unshare "${USERNS[@]}" --net -- bash -c '
  set -e
  ip link set lo up
  ip link add v0 type veth peer name v1
  ip addr add 192.0.2.99/24 dev v0
  ip link set v0 up; ip link set v1 up
  ip route add default via 192.0.2.1 dev v0
  log=$1; shift
  exec strace -f -qq -s 0 -e trace=connect,sendto,sendmsg -o "$log" "$@"' egress "$LOG" "$@" || rc=$?
python3 - "$LOG" <<'EOF' || { [ $rc -ne 0 ] || rc=3; }
import ipaddress, re, sys
calls = {"connect": {}, "sendto": {}, "sendmsg": {}}
beyond = {}
port_re = re.compile(r'sin6?_port=htons\((\d+)\)')
for line in open(sys.argv[1], errors="replace"):
    m = re.match(r'\s*\d*\s*(connect|sendto|sendmsg)\(', line)
    if not m:
        continue
    call = m.group(1)
    fam = re.search(r'sa_family=(AF_\w+)', line)
    if not fam:
        kind = "connected socket"
    elif fam.group(1) in ("AF_UNIX", "AF_NETLINK", "AF_UNSPEC"):
        kind = "local (" + fam.group(1) + ")"
    else:
        ip = re.search(r'inet_addr\("([^"]+)"\)|inet_pton\(AF_INET6, "([^"]+)"', line)
        port = port_re.search(line)
        a = ipaddress.ip_address(ip.group(1) or ip.group(2))
        if getattr(a, "ipv4_mapped", None):
            a = a.ipv4_mapped
        if a.is_loopback:
            kind = "loopback"
        else:
            kind = "BEYOND LOOPBACK"
            key = f"{call} {a}:{port.group(1) if port else '?'}"
            beyond[key] = beyond.get(key, 0) + 1
    calls[call][kind] = calls[call].get(kind, 0) + 1
for call, kinds in calls.items():
    print(f"egress: {call:8s} " + (", ".join(f"{k} {n}" for k, n in sorted(kinds.items())) or "none"))
if beyond:
    print("egress: BEYOND LOOPBACK: " + ", ".join(f"{k} ×{n}" for k, n in sorted(beyond.items())))
    sys.exit(1)
print("egress: nothing addressed beyond loopback")
EOF
exit $rc
