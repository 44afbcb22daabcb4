#!/bin/sh
# BGP/ECMP benchmark: how fast the router (bird2) drops a crashed node
# from the VIP's ECMP route, for several BGP timer and BFD settings, and
# how many established flows survive the rehash (the real daemon with XDP
# on three nodes, cluster/bgp/e2e's namespace lab). Root only; everything
# runs in namespaces it creates and removes. See main.go for what is
# measured.
#
#   bench/bgp/run.sh            # 5 crashes per setting, 1 with the default timers (~3.5 min)
#   bench/bgp/run.sh -quick     # 2 crashes per setting (150 flows), 1 with the default timers (~2 min)
#   bench/bgp/run.sh -settings kill,bfd100 -runs 10 -v
#   bench/bgp/run.sh -speaker bird   # bird2 as the nodes' speaker (reference)
#
# Other flags (passed through): -flows N, -xdp native, -dir DIR -keep, -v.
# bird2 comes from Debian: apt-get install -y bird2.
set -eu
cd "$(dirname "$0")/../.."
[ "$(id -u)" = 0 ] || { echo "run.sh: needs root" >&2; exit 1; }
command -v bird >/dev/null 2>&1 || [ -x /usr/sbin/bird ] || { echo "run.sh: bird2 is not installed (apt-get install -y bird2)" >&2; exit 1; }

args=""
for a in "$@"; do
	if [ "$a" = "-quick" ] || [ "$a" = "--quick" ]; then
		args="$args -runs 2 -flows 150"
	else
		args="$args $a"
	fi
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/portcullis" ./cmd/portcullis
go build -o "$tmp/bgpbench" ./bench/bgp
# The full run takes about 3.5 minutes (the default-timer crash alone up to
# 90 s); nothing may hang a CI box.
# shellcheck disable=SC2086
timeout --signal=INT --kill-after=30 900 "$tmp/bgpbench" -bin "$tmp/portcullis" $args
