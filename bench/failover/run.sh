#!/bin/sh
# Failover benchmark (issue 5): the failover gap of a Portcullis pair (lan
# and fast cluster profiles, the real daemon with XDP) and of keepalived
# (VRRP, advert_int 1s and 100ms) in the same namespace topology, printed
# side by side. Root only; everything runs in namespaces it creates and
# removes. See main.go for what is measured.
#
#   bench/failover/run.sh                 # full: 10 crashes per setting (~5 min)
#   bench/failover/run.sh -quick          # 3 crashes per setting (~1.5 min)
#   bench/failover/run.sh -idle 10m       # no crash: 10 minutes idle, both cores busy,
#                                         # reports false failovers (fast profile)
#   bench/failover/run.sh -runs 20 -settings fast,keepalived-100ms -v
#
# Other flags (passed through): -xdp generic, -flood, -dir DIR -keep, -v.
# keepalived comes from Debian: apt-get install -y keepalived.
set -eu
cd "$(dirname "$0")/../.."
[ "$(id -u)" = 0 ] || { echo "run.sh: needs root" >&2; exit 1; }

args=""
for a in "$@"; do
	if [ "$a" = "-quick" ] || [ "$a" = "--quick" ]; then
		args="$args -runs 3"
	else
		args="$args $a"
	fi
done

if ! command -v keepalived >/dev/null 2>&1; then
	echo "run.sh: keepalived is not installed (apt-get install -y keepalived); its settings will report the error" >&2
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/portcullis" ./cmd/portcullis
go build -o "$tmp/failover" ./bench/failover
# timeout: the full run takes about 5 minutes; nothing may hang a CI box.
limit=900
case "$args" in *-idle*) limit=$((limit + 3600)) ;; esac
# shellcheck disable=SC2086
timeout --signal=INT --kill-after=30 "$limit" "$tmp/failover" -bin "$tmp/portcullis" $args
