#!/usr/bin/env bash
# backend.sh NAME IP VIP... - provision a DSR backend VM of the Vagrant lab:
# find the interface holding IP, then dsr-backend.sh install (the same
# script and sysctl file `make lab` applies to its backend namespaces).
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: $0 NAME IP VIP..." >&2; exit 2; }
name=$1 ip=$2
shift 2
export DEBIAN_FRONTEND=noninteractive
command -v python3 >/dev/null || { apt-get update -q && apt-get install -y -q python3; }
iface=$(ip -o -4 addr show | awk -v ip="$ip" '{split($4, a, "/"); if (a[1] == ip) print $2}' | head -n1)
[ -n "$iface" ] || { echo "$0: no interface holds $ip" >&2; exit 1; }
"$(dirname "$0")/dsr-backend.sh" install "$name" "$iface" "$@"
echo "backend.sh: $name serves HTTP on 443 and 8080, VIPs $* on lo, DSR sysctls on $iface"
