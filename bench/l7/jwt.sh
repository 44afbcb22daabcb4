#!/usr/bin/env bash
# bench/l7/jwt.sh [SECONDS] - proxy CPU per request with JWT verification.
#
# Issue #7's benchmark: the daemon with three HTTP/1.1 listeners in one
# process, each with one route to the same pool (the shared benchmark
# backend, ../shared/bench/backend, 4 ports, round robin): "plain" without
# JWT, "rs" requiring an RS256 token, "es" an ES256 one (keys and tokens
# from bench/l7/jwttoken). wrk sends the same token on every request, as a
# client does, so the verified-token cache answers all but the first; the
# first verification of each token is in l7/auth's Go benchmarks. Pinned as
# l7peers.sh pins (backend CPU 0, wrk CPU 1, proxy unpinned); the order of
# the three rotates per round; CPU per request is the daemon's user+system
# time over the requests wrk made.
#
#   ROUNDS=3 ./bench/l7/jwt.sh 6
set -euo pipefail
SECS=${1:-6}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-64}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SHARED=${SHARED:-$ROOT/../shared}
RUN=$(mktemp -d /tmp/l7jwt.XXXXXX)
# shellcheck source=lib.sh
. "$ROOT/bench/l7/lib.sh"
needs wrk taskset setsid

(cd "$SHARED/bench/backend" && go build -o "$RUN/backend" .)
(cd "$ROOT" && go build -o "$RUN/portcullis" ./cmd/portcullis && go build -o "$RUN/jwttoken" ./bench/l7/jwttoken)
"$RUN/jwttoken" -dir "$RUN" -ttl 2h
BACKENDS="127.0.0.1:19201 127.0.0.1:19202 127.0.0.1:19203 127.0.0.1:19204"
# shellcheck disable=SC2086
setsid $PIN0 "$RUN/backend" -listen "$(echo $BACKENDS | tr ' ' ,)" >"$RUN/backend.log" 2>&1 &
PIDS+=($!)
declare -A PORT=([plain]=18285 [rs]=18286 [es]=18287)
{
	echo "node: {name: jwtbench}"
	echo "log: {level: warn}"
	echo "admin: {listen: 127.0.0.1:18290, token: bench-token}"
	echo "l7:"
	echo "  access_log: {enabled: false}"
	echo "  listeners:"
	for n in plain rs es; do echo "    - {name: $n, address: \"127.0.0.1:${PORT[$n]}\"}"; done
	echo "  pools:"
	echo "    - name: bench"
	echo "      algorithm: round_robin"
	echo "      max_idle_per_endpoint: 1024"
	echo "      endpoints:"
	for b in $BACKENDS; do echo "        - {address: \"$b\"}"; done
	echo "  routes:"
	echo "    - {name: plain, listeners: [plain], pool: bench}"
	for n in rs es; do
		alg=RS256
		[ $n = es ] && alg=ES256
		echo "    - name: $n"
		echo "      listeners: [$n]"
		echo "      pool: bench"
		echo "      jwt: {issuer: bench, audiences: [bench], keys: [{algorithm: $alg, pem_file: \"$RUN/$n.pem\"}]}"
	done
} >"$RUN/portcullis.yaml"
"$RUN/portcullis" validate --config "$RUN/portcullis.yaml" >/dev/null
setsid "$RUN/portcullis" run --config "$RUN/portcullis.yaml" >"$RUN/portcullis.log" 2>&1 &
PID=$!
PIDS+=($PID)
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:${PORT[plain]}/" && break; sleep 0.1; done
hdr() { if [ "$1" = plain ]; then echo "X-Bench: 1"; else echo "Authorization: Bearer $(cat "$RUN/$1.token")"; fi; }
for n in plain rs es; do
	code=$(curl -s -o /dev/null -w '%{http_code}' -H "$(hdr $n)" "http://127.0.0.1:${PORT[$n]}/")
	[ "$code" = 200 ] || { echo "$n: status $code, want 200 (see $RUN/portcullis.log)" >&2; exit 1; }
	code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${PORT[$n]}/")
	if [ $n != plain ] && [ "$code" != 401 ]; then echo "$n without a token: $code, want 401" >&2; exit 1; fi
done
: >"$RUN/results"
order=(plain rs es)
for r in $(seq 1 "$ROUNDS"); do
	for n in "${order[@]}"; do
		# shellcheck disable=SC2086
		timeout 30 $PIN1 wrk -t2 -c"$CONNS" -d1s -H "$(hdr $n)" "http://127.0.0.1:${PORT[$n]}/" >/dev/null
		a=$(cpu $PID)
		# shellcheck disable=SC2086
		timeout $((SECS + 30)) $PIN1 wrk -t2 -c"$CONNS" -d"${SECS}s" -H "$(hdr $n)" "http://127.0.0.1:${PORT[$n]}/" >"$RUN/wrk.$n.$r"
		b=$(cpu $PID)
		reqs=$(awk '/requests in/{print $1}' "$RUN/wrk.$n.$r")
		non2xx=$(awk '/Non-2xx/{print $NF}' "$RUN/wrk.$n.$r")
		us=$(us_per_req "$a" "$b" "$reqs")
		printf '%s %s %s %.2f %s\n' "$r" "$n" "$reqs" "$us" "${non2xx:-0}" | tee -a "$RUN/results" >&2
	done
	order=("${order[@]:1}" "${order[0]}")
done
echo
printf '%-6s %10s %10s %8s %8s\n' route req/round us/req vs_plain non2xx
base=$(median_of plain "$RUN/results")
for n in plain rs es; do
	m=$(median_of $n "$RUN/results")
	reqs=$(awk -v n=$n '$2==n {s+=$3; c++} END{printf "%d", s/c}' "$RUN/results")
	bad=$(awk -v n=$n '$2==n {s+=$5} END{print s+0}' "$RUN/results")
	printf '%-6s %10s %10.2f %8.2f %8s\n' $n "$reqs" "$m" "$(echo "$m / $base" | bc -l)" "$bad"
done
echo "(medians over $ROUNDS rounds of ${SECS}s; raw: $RUN)"
