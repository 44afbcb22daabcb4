#!/usr/bin/env bash
# bench/l7/run.sh [SECONDS] - Portcullis in the shared L7 peer benchmark.
#
# Runs ../shared/bench/l7peers.sh (read-only, called by path) with Portcullis
# as the candidate: the daemon is built from ./cmd/portcullis and run with a
# generated config that has a plain HTTP/1.1 listener on CANDIDATE_H1 and a
# TLS listener (h2 by ALPN) on CANDIDATE_H2, one pool round-robining over
# BENCH_BACKENDS with upstream keep-alive, and the access log off — the job
# HAProxy, nginx and Caddy do in the same run. Every knob of l7peers.sh
# (ROUNDS, PATHS, TARGETS, PROTOS, ...) passes through.
#
#   ROUNDS=2 ./bench/l7/run.sh 6
#   H1_SERVER=stdlib ./bench/l7/run.sh 6  # the h1 listener on net/http's
#                                          # server (listener `server: stdlib`)
#
# The h1 listener is cleartext without h2c, so l7/listen serves it with the
# lean HTTP/1.1 server (l7/internal/h1) unless H1_SERVER=stdlib.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SHARED=${SHARED:-$ROOT/../shared}
PEERS=$SHARED/bench/l7peers.sh
[ -x "$PEERS" ] || { echo "no harness at $PEERS (set SHARED)" >&2; exit 2; }

export CANDIDATE_NAME=${CANDIDATE_NAME:-portcullis}
export CANDIDATE_H1=${CANDIDATE_H1:-127.0.0.1:18085}
export CANDIDATE_H2=${CANDIDATE_H2:-127.0.0.1:18445}
export PORTCULLIS_ROOT=$ROOT
export PORTCULLIS_ADMIN=${PORTCULLIS_ADMIN:-127.0.0.1:18990}
# LEAN_H1=1 (the throwaway lean main) is gone: the daemon serves h1 with
# the lean server itself. LEAN_H1=0 is read as H1_SERVER=stdlib.
if [ "${LEAN_H1:-}" = 0 ]; then H1_SERVER=${H1_SERVER:-stdlib}; fi
export H1_SERVER=${H1_SERVER:-lean}
# GOMAXPROCS of the proxy; default the harness's WORKERS (2 here, as
# HAProxy's nbthread). PROCS=1 measured ~30% less CPU per request: with one
# P the Go scheduler never wakes a second thread per ready connection.
export PROCS=${PROCS:-}
# The command runs inside the harness with BENCH_* set. It writes the
# config into the harness's run dir, builds, and execs the daemon in the
# foreground (the harness stops it by process group).
export CANDIDATE_CMD='
set -e
cfg=$BENCH_RUN/portcullis.yaml
{
  echo "node: {name: bench}"
  echo "log: {level: warn, format: text}"
  echo "admin: {listen: $PORTCULLIS_ADMIN, token: bench-token}"
  echo "l7:"
  echo "  access_log: {enabled: false}"
  echo "  listeners:"
  echo "    - {name: h1, address: \"$CANDIDATE_H1\", server: $H1_SERVER}"
  echo "    - name: h2"
  echo "      address: \"$CANDIDATE_H2\""
  echo "      tls: {certificates: [{cert_file: \"$BENCH_CERT\", key_file: \"$BENCH_KEY\"}]}"
  echo "  pools:"
  echo "    - name: bench"
  echo "      algorithm: round_robin"
  echo "      max_idle_per_endpoint: 1024 # as the harness gives Caddy and nginx: h2 keeps 640 requests in flight"
  echo "      endpoints:"
  for b in $(echo "$BENCH_BACKENDS" | tr , " "); do echo "        - {address: \"$b\"}"; done
  echo "  routes:"
  echo "    - {name: all, pool: bench}"
} >"$cfg"
cd "$PORTCULLIS_ROOT"
if go build -o "$BENCH_RUN/portcullis" ./cmd/portcullis 2>"$BENCH_RUN/portcullis.build"; then
  exec env GOMAXPROCS="${PROCS:-$BENCH_WORKERS}" "$BENCH_RUN/portcullis" run --config "$cfg"
fi
# The daemon does not build right now (another subsystem mid-change): run
# the same engine from the same config through the throwaway main.
echo "cmd/portcullis does not build; using bench/l7/candidate" >&2
go build -o "$BENCH_RUN/portcullis-l7" ./bench/l7/candidate
exec env GOMAXPROCS="${PROCS:-$BENCH_WORKERS}" "$BENCH_RUN/portcullis-l7" -config "$cfg"
'
exec "$PEERS" "$@"
