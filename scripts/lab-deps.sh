#!/usr/bin/env bash
# Installs what the network lab (integration's TestInternetLab) needs:
# nftables (the NAT routers), iproute2 (ip) and util-linux (nsenter), with
# apt-get when missing. It runs before `make test` enters its loopback-only
# namespace, where nothing can be downloaded. The lab needs root; without
# root, or where apt-get fails, it says so and the lab test skips itself.
set -uo pipefail
missing=()
command -v nft >/dev/null || missing+=(nftables)
command -v ip >/dev/null || missing+=(iproute2)
command -v nsenter >/dev/null || missing+=(util-linux)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "lab-deps: not root: the network lab (TestInternetLab) will skip (it needs root and ${missing[*]})"
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "lab-deps: no apt-get: install ${missing[*]} for the network lab (TestInternetLab), or it skips"
  exit 0
fi
echo "lab-deps: installing ${missing[*]} (apt-get) for the network lab"
if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; }; then
  echo "lab-deps: FAILED to install ${missing[*]}: the network lab (TestInternetLab) will skip"
fi
exit 0
