#!/usr/bin/env bash
# bench/l7/cachehit.sh [SECONDS] - CPU per request of a cache hit against
# HAProxy proxying the same request (issue #8's benchmark).
#
# One origin (bench/l7/cacheorigin: 64 bytes, Cache-Control: public,
# max-age=3600) on CPU 0; HAProxy 2.6 (nbthread 2, keep-alive to the
# origin, no cache) and the Portcullis daemon with two listeners: "cached"
# (a route with cache:, every request after the first a hit) and "proxied"
# (the same route without cache). wrk -t2 -c64 on CPU 1 against each in
# turn, rotating the order per round; CPU per request is each proxy's
# user+system time over the requests wrk made.
#
#   ROUNDS=3 ./bench/l7/cachehit.sh 6
set -euo pipefail
SECS=${1:-6}
ROUNDS=${ROUNDS:-3}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
RUN=$(mktemp -d /tmp/l7cache.XXXXXX)
# shellcheck source=lib.sh
. "$ROOT/bench/l7/lib.sh"
needs wrk taskset setsid haproxy curl
(cd "$ROOT" && go build -o "$RUN/portcullis" ./cmd/portcullis && go build -o "$RUN/origin" ./bench/l7/cacheorigin)
ORIGIN=127.0.0.1:19301
# shellcheck disable=SC2086
setsid $PIN0 "$RUN/origin" -listen $ORIGIN >"$RUN/origin.log" 2>&1 &
PIDS+=($!)
cat >"$RUN/haproxy.cfg" <<CFG
global
    nbthread 2
defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 2s
    timeout client 30s
    timeout server 30s
frontend fe
    bind 127.0.0.1:18391
    default_backend be
backend be
    server o1 $ORIGIN
CFG
setsid haproxy -db -f "$RUN/haproxy.cfg" >"$RUN/haproxy.log" 2>&1 &
HAP=$!
PIDS+=($HAP)
cat >"$RUN/portcullis.yaml" <<YAML
node: {name: cachebench}
log: {level: warn}
admin: {listen: 127.0.0.1:18399, token: bench-token}
l7:
  access_log: {enabled: false}
  listeners:
    - {name: cached, address: "127.0.0.1:18392"}
    - {name: proxied, address: "127.0.0.1:18393"}
  pools:
    - {name: origin, max_idle_per_endpoint: 256, endpoints: [{address: "$ORIGIN"}]}
  routes:
    - {name: cached, listeners: [cached], pool: origin, cache: {max_bytes: 16777216}}
    - {name: proxied, listeners: [proxied], pool: origin}
YAML
"$RUN/portcullis" validate --config "$RUN/portcullis.yaml" >/dev/null
setsid "$RUN/portcullis" run --config "$RUN/portcullis.yaml" >"$RUN/portcullis.log" 2>&1 &
PC=$!
PIDS+=($PC)
declare -A URL=([haproxy]=http://127.0.0.1:18391/ [cached]=http://127.0.0.1:18392/ [proxied]=http://127.0.0.1:18393/)
declare -A PID=([haproxy]=$HAP [cached]=$PC [proxied]=$PC)
for _ in $(seq 1 100); do curl -s -o /dev/null "${URL[cached]}" && curl -s -o /dev/null "${URL[haproxy]}" && break; sleep 0.1; done
status=$(curl -s -D - -o /dev/null "${URL[cached]}" | tr -d '\r' | awk -F': ' 'tolower($1)=="cache-status"{print $2}')
case $status in *hit*) ;; *) echo "the cached route does not hit: Cache-Status '$status'" >&2; exit 1 ;; esac
: >"$RUN/results"
order=(haproxy cached proxied)
for r in $(seq 1 "$ROUNDS"); do
	for n in "${order[@]}"; do
		# shellcheck disable=SC2086
		timeout 30 $PIN1 wrk -t2 -c64 -d1s "${URL[$n]}" >/dev/null
		a=$(cpu "${PID[$n]}")
		# shellcheck disable=SC2086
		timeout $((SECS + 30)) $PIN1 wrk -t2 -c64 -d"${SECS}s" "${URL[$n]}" >"$RUN/wrk.$n.$r"
		b=$(cpu "${PID[$n]}")
		reqs=$(awk '/requests in/{print $1}' "$RUN/wrk.$n.$r")
		printf '%s %s %s %.2f\n' "$r" "$n" "$reqs" "$(us_per_req "$a" "$b" "$reqs")" | tee -a "$RUN/results" >&2
	done
	order=("${order[@]:1}" "${order[0]}")
done
echo
printf '%-8s %10s %8s\n' target us/req vs_hap
base=$(median_of haproxy "$RUN/results")
for n in haproxy cached proxied; do
	m=$(median_of $n "$RUN/results")
	printf '%-8s %10.2f %8.2f\n' $n "$m" "$(echo "$m / $base" | bc -l)"
done
echo "(medians over $ROUNDS rounds of ${SECS}s; raw: $RUN)"
