#!/usr/bin/env bash
# bench/l7/idle.sh [N] - memory per idle keep-alive client connection.
#
# Starts the shared benchmark backend and the proxy under test on loopback,
# opens N (default 10000) HTTP/1.1 connections that each made one request
# and now sit idle (bench/l7/idleconns), and reports the proxy's RSS growth
# per connection. Modes (MODES, default "nethttp lean haproxy h2std h2lean
# haproxy-h2"):
#   nethttp  the L7 engine behind net/http's server (listener server: stdlib)
#   lean     the L7 engine behind the lean HTTP/1.1 server (l7/listen's
#            default for cleartext listeners)
#   haproxy  HAProxy 2.6 with the harness's config, for scale
#   h2std, h2lean, haproxy-h2: the same over HTTP/2 with TLS (Go's HTTP/2
#            server, the lean one in l7/internal/h2, HAProxy)
# Every process is started here, tracked by PID and stopped on exit; the
# client holds the connections for HOLD seconds (default 6), then closes.
set -euo pipefail
N=${1:-10000}
HOLD=${HOLD:-6}
MODES=${MODES:-nethttp lean haproxy h2std h2lean haproxy-h2}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SHARED=${SHARED:-$ROOT/../shared}
RUN=$(mktemp -d /tmp/l7idle.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -TERM -- "-$p" 2>/dev/null || kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
# 10k client sockets here and 10k in the proxy: raise the soft limit to the
# hard one (never above it).
ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -gt $((N + 500)) ] || { echo "ulimit -n $(ulimit -n) is too low for $N connections" >&2; exit 2; }

(cd "$SHARED/bench/backend" && go build -o "$RUN/backend" .)
(cd "$ROOT" && go build -o "$RUN/cand" ./bench/l7/candidate && go build -o "$RUN/idleconns" ./bench/l7/idleconns)
BACK=127.0.0.1:19101
setsid "$RUN/backend" -listen "$BACK" >"$RUN/backend.log" 2>&1 &
PIDS+=($!)
cat >"$RUN/cfg.yaml" <<YAML
node: {name: idle}
log: {level: warn}
admin: {listen: 127.0.0.1:18991}
l7:
  listeners:
    - {name: h1, address: "127.0.0.1:18185"}
  pools:
    - {name: p, endpoints: [{address: "$BACK"}]}
  routes:
    - {name: all, pool: p}
YAML
sed 's|address: "127.0.0.1:18185"}|address: "127.0.0.1:18185", server: stdlib}|' "$RUN/cfg.yaml" >"$RUN/cfg-stdlib.yaml"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=bench \
	-keyout "$RUN/key.pem" -out "$RUN/cert.pem" 2>/dev/null
cat "$RUN/cert.pem" "$RUN/key.pem" >"$RUN/combined.pem"
TLSL="tls: {certificates: [{cert_file: \"$RUN/cert.pem\", key_file: \"$RUN/key.pem\"}]}"
sed "s|address: \"127.0.0.1:18185\"}|address: \"127.0.0.1:18185\", $TLSL}|" "$RUN/cfg.yaml" >"$RUN/cfg-h2.yaml"
sed "s|address: \"127.0.0.1:18185\"}|address: \"127.0.0.1:18185\", server: stdlib, $TLSL}|" "$RUN/cfg.yaml" >"$RUN/cfg-h2std.yaml"
# HAProxy asks for 2×maxconn+17 descriptors and refuses to start beyond the
# hard limit (20000 here), so it gets at most (hard-17)/2 connections.
HMAX=$(( ($(ulimit -Hn) - 17) / 2 ))
[ $HMAX -gt $((N + 50)) ] && HMAX=$((N + 50))
HN=$N
[ $HN -gt $((HMAX - 50)) ] && HN=$((HMAX - 50))
cat >"$RUN/haproxy.cfg" <<CFG
global
    nbthread 2
    maxconn $HMAX
defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s
frontend fe
    bind 127.0.0.1:18186
    default_backend be
frontend fe2
    bind 127.0.0.1:18187 ssl crt $RUN/combined.pem alpn h2,http/1.1
    default_backend be
backend be
    server b1 $BACK
CFG
rss_kb() { awk '/^VmRSS/{print $2}' "/proc/$1/status"; }
sleep 0.5
printf '%-8s %8s %10s %10s %12s\n' mode conns rss0_MB rss1_MB bytes/conn
for m in $MODES; do
	case $m in
	nethttp) setsid env GOMAXPROCS=2 "$RUN/cand" -config "$RUN/cfg-stdlib.yaml" -pprof 127.0.0.1:18992 >"$RUN/$m.log" 2>&1 & addr=127.0.0.1:18185 ;;
	lean) setsid env GOMAXPROCS=2 "$RUN/cand" -config "$RUN/cfg.yaml" -pprof 127.0.0.1:18992 >"$RUN/$m.log" 2>&1 & addr=127.0.0.1:18185 ;;
	haproxy) setsid haproxy -db -f "$RUN/haproxy.cfg" >"$RUN/$m.log" 2>&1 & addr=127.0.0.1:18186 ;;
	h2std) setsid env GOMAXPROCS=2 "$RUN/cand" -config "$RUN/cfg-h2std.yaml" -pprof 127.0.0.1:18992 >"$RUN/$m.log" 2>&1 & addr=127.0.0.1:18185 ;;
	h2lean) setsid env GOMAXPROCS=2 "$RUN/cand" -config "$RUN/cfg-h2.yaml" -pprof 127.0.0.1:18992 >"$RUN/$m.log" 2>&1 & addr=127.0.0.1:18185 ;;
	haproxy-h2) setsid haproxy -db -f "$RUN/haproxy.cfg" >"$RUN/$m.log" 2>&1 & addr=127.0.0.1:18187 ;;
	esac
	h2=false
	case $m in h2* | *-h2) h2=true ;; esac
	pid=$!
	PIDS+=($pid)
	sleep 1
	# One request first so pools and buffers that every connection shares
	# are already there.
	if $h2; then curl -sk -o /dev/null --http2 "https://$addr/"; else curl -s -o /dev/null "http://$addr/"; fi
	sleep 0.5
	r0=$(rss_kb $pid)
	n=$N
	case $m in haproxy*) n=$HN ;; esac
	timeout $((HOLD + 120)) "$RUN/idleconns" -h2="$h2" -addr "$addr" -n "$n" -hold "${HOLD}s" >"$RUN/$m.client" 2>&1 &
	cl=$!
	for _ in $(seq 1 1200); do grep -q ready "$RUN/$m.client" 2>/dev/null && break; kill -0 $cl 2>/dev/null || break; sleep 0.1; done
	sleep 2 # idle connections give their buffers back after ~1 s (lean)
	if [ "${m#haproxy}" = "$m" ]; then
		# Two collections: sync.Pool keeps freed buffers for one more GC.
		# A busy server collects all the time; an idle test would not.
		curl -s -o /dev/null "http://127.0.0.1:18992/debug/pprof/heap?gc=1"
		curl -s -o /dev/null "http://127.0.0.1:18992/debug/pprof/heap?gc=1"
		sleep 1
	fi
	r1=$(rss_kb $pid)
	if [ "${m#haproxy}" = "$m" ]; then
		# Go's own view: live heap and stacks (RSS also holds freed memory
		# the runtime has not returned to the kernel yet).
		curl -s "http://127.0.0.1:18992/debug/pprof/heap?debug=1" | awk -v n="$n" -v m="$m" '
			/^# HeapInuse/ {h=$4} /^# Stack = / {s=$4}
			END {printf "   %s: heap in use %.0f B/conn, stacks %.0f B/conn\n", m, h/n, s/n}' >>"$RUN/memstats"
	fi
	wait $cl || { echo "$m: client failed: $(cat "$RUN/$m.client")" >&2; }
	printf '%-8s %8d %10.1f %10.1f %12.0f\n' "$m" "$n" "$(echo "$r0/1024" | bc -l)" "$(echo "$r1/1024" | bc -l)" "$(echo "($r1-$r0)*1024/$n" | bc -l)"
	kill -TERM -- "-$pid" 2>/dev/null || kill $pid
	sleep 0.5
done
[ -f "$RUN/memstats" ] && cat "$RUN/memstats"
