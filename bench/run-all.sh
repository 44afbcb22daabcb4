#!/usr/bin/env bash
# bench/run-all.sh - the benchmarks of docs/benchmarks.md in one bounded run,
# ending with one summary table. `make bench` runs it.
#
#   maglev    go test -bench New ./l4/maglev/            table build time, allocations
#   xdp       go test -bench XDP ./l4/                   ns/packet per path against the
#                                                        empty XDP program (root: BPF_PROG_TEST_RUN)
#   l7        bench/l7/run.sh (ROUNDS=1, short cells)    proxy CPU per request against
#                                                        HAProxy and nginx, same run
#   failover  bench/failover/run.sh -quick               crash-to-first-connection gap
#                                                        against keepalived (root)
#   bgp       bench/bgp/run.sh -quick (no 90s default)   node crash to the router dropping
#                                                        its ECMP next hop, flows kept (root, bird2)
#
# A part whose prerequisite is missing (root, haproxy, wrk, h2load,
# keepalived, the shared L7 harness) is skipped with the reason; the others
# still run. Every part runs under `timeout`, bounded by what is left of
# BUDGET, so the whole run ends within it (default 840 s, under 15 minutes;
# as root with every peer installed it takes 2-4 minutes). Raw outputs stay
# in OUT_DIR. Exits 1 if a part failed (after the table), 0 if every part
# passed or skipped.
#
# Knobs (defaults in brackets): PARTS ["maglev xdp l7 failover bgp"], BUDGET [840],
# OUT_DIR [mktemp], XDP_BENCHTIME [20000x], XDP_COUNT [3], L7_SECS [3],
# L7_TARGETS ["haproxy nginx portcullis"], GO [go].
#
# Read ratios against a peer measured in the same run (docs/benchmarks.md):
# other work on the machine moves the absolute numbers.
# The part_* functions are called as "part_$p": shellcheck's SC2317
# (unreachable) does not see that.
# shellcheck disable=SC2317
set -u -o pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 2
GO=${GO:-go}
PARTS=${PARTS:-maglev xdp l7 failover bgp}
BUDGET=${BUDGET:-840}
XDP_BENCHTIME=${XDP_BENCHTIME:-20000x}
XDP_COUNT=${XDP_COUNT:-3}
L7_SECS=${L7_SECS:-3}
L7_TARGETS=${L7_TARGETS:-haproxy nginx portcullis}
OUT=${OUT_DIR:-$(mktemp -d /tmp/portcullis-bench.XXXXXX)}
mkdir -p "$OUT"
START=$(date +%s)

ROWS=()    # part<TAB>what<TAB>value<TAB>against
STATUS=()  # part: ok / skipped: reason / failed: reason
row() { ROWS+=("$1"$'\t'"$2"$'\t'"$3"$'\t'"${4:--}"); }
status() { STATUS+=("$(printf '%-9s %s' "$1" "$2")"); }
say() { printf '[run-all %s] %s\n' "$(date +%T)" "$*" >&2; }
have() { command -v "$1" >/dev/null 2>&1; }
is_root() { [ "$(id -u)" = 0 ]; }

# bounded PART LIMIT LOG CMD...: CMD under timeout, at most LIMIT seconds
# and never past the budget (keeping 15 s for the parts' clean-up and the
# report). Returns CMD's status, 124 on timeout, 125 if no time was left.
bounded() {
	local part=$1 limit=$2 log=$3
	shift 3
	local left=$((BUDGET - ($(date +%s) - START) - 15))
	[ "$limit" -gt "$left" ] && limit=$left
	if [ "$limit" -lt 20 ]; then
		say "$part: no time left in the ${BUDGET}s budget"
		return 125
	fi
	say "$part: $* (at most ${limit}s, log $log)"
	timeout --signal=TERM --kill-after=20 "$limit" "$@" >"$log" 2>&1
}

# finish PART RC LOG: the part's status line from the command's exit code.
finish() {
	case $2 in
	0) status "$1" "ok" ;;
	124) status "$1" "failed: timed out (partial results; log $3)" ;;
	125) status "$1" "skipped: the time budget was used up" ;;
	*) status "$1" "failed: exit $2 (log $3)" ;;
	esac
}

part_maglev() {
	local log=$OUT/maglev.txt rc=0
	bounded maglev 180 "$log" "$GO" test -run '^$' -bench New -benchmem -count 1 ./l4/maglev/ || rc=$?
	finish maglev "$rc" "$log"
	# BenchmarkNew/N=10-2   1141   1023456 ns/op   1234 B/op   4 allocs/op
	while IFS=$'\t' read -r name ms allocs; do
		row maglev "table build, $name, M=65537" "$ms ms" "$allocs allocs/op"
	done < <(awk '/^BenchmarkNew\// {
		n = $1; sub(/^BenchmarkNew\//, "", n); sub(/-[0-9]+$/, "", n)
		ns = ""; al = ""
		for (i = 2; i < NF; i++) { if ($(i+1) == "ns/op") ns = $i; if ($(i+1) == "allocs/op") al = $i }
		if (ns != "") printf "%s\t%.2f\t%s\n", n, ns / 1e6, al
	}' "$log")
}

part_xdp() {
	if ! is_root; then
		status xdp "skipped: needs root (BPF_PROG_TEST_RUN loads the XDP program)"
		return
	fi
	local log=$OUT/xdp.txt rc=0
	bounded xdp 300 "$log" "$GO" test -run '^$' -bench XDP -benchtime "$XDP_BENCHTIME" -count "$XDP_COUNT" ./l4/ || rc=$?
	finish xdp "$rc" "$log"
	if grep -q -- '--- SKIP' "$log" && ! grep -q '^BenchmarkXDPFloor' "$log"; then
		STATUS[${#STATUS[@]}-1]=$(printf '%-9s %s' xdp "skipped: $(grep -m1 -A1 -- '--- SKIP' "$log" | tail -1 | sed 's/^ *//')")
		return
	fi
	# BenchmarkXDPNonVIP-2  20000  1597 ns/op  70.00 ns/pkt  71.00 p90-ns/pkt  70.10 tmean-ns/pkt
	# The median over -count runs of the trimmed mean; the floor is the
	# empty program measured the same way.
	while IFS=$'\t' read -r name tmean above; do
		row xdp "$name" "$tmean ns/pkt" "$above"
	done < <(awk '
	function median(s,   n, v, i, j, x) {
		n = split(s, v, " ")
		for (i = 2; i <= n; i++) { x = v[i]; for (j = i - 1; j >= 1 && v[j] + 0 > x + 0; j--) v[j + 1] = v[j]; v[j + 1] = x }
		return (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
	}
	/^BenchmarkXDP/ {
		n = $1; sub(/^BenchmarkXDP/, "", n); sub(/-[0-9]+$/, "", n)
		for (i = 2; i < NF; i++) if ($(i+1) == "tmean-ns/pkt") {
			if (!(n in seen)) { seen[n] = 1; order[++k] = n }
			vals[n] = vals[n] " " $i
		}
	}
	END {
		floor = ("Floor" in seen) ? median(vals["Floor"]) : ""
		for (i = 1; i <= k; i++) {
			n = order[i]; m = median(vals[n])
			if (n == "Floor") printf "empty program (floor)\t%.0f\tthe method'"'"'s own cost\n", m
			else if (floor != "") printf "%s\t%.0f\t%+.0f above the floor\n", n, m, m - floor
			else printf "%s\t%.0f\t-\n", n, m
		}
	}' "$log")
}

part_l7() {
	local harness=${SHARED:-$ROOT/../shared}/bench/l7peers.sh missing="" t
	for t in wrk h2load haproxy curl openssl taskset; do have "$t" || missing="$missing $t"; done
	if [ ! -x "$harness" ]; then
		status l7 "skipped: no shared L7 harness at $harness (set SHARED)"
		return
	fi
	if [ -n "$missing" ]; then
		status l7 "skipped: missing$missing (see ../shared/bench/install-peers.sh)"
		return
	fi
	local targets=$L7_TARGETS note=""
	if ! have nginx; then
		targets=$(echo " $targets " | sed 's/ nginx / /; s/^ //; s/ $//')
		note=" (nginx not installed: compared with HAProxy only)"
	fi
	local log=$OUT/l7.txt rc=0
	rm -rf "$OUT/l7"
	bounded l7 360 "$log" env ROUNDS=1 WARMUP=1 TARGETS="$targets" RUN_DIR="$OUT/l7" KEEP_RUN=1 \
		bash bench/l7/run.sh "$L7_SECS" || rc=$?
	finish l7 "$rc" "$log"
	[ -n "$note" ] && STATUS[${#STATUS[@]}-1]+=$note
	local tsv=$OUT/l7/results.tsv
	[ -s "$tsv" ] || return
	# results.tsv: round target proto path rps p50 p99 reqs errs prx_us/rq ...
	while IFS=$'\t' read -r what value against; do
		row l7 "$what" "$value" "$against"
	done < <(awk -F'\t' '
	{ k = $2 SUBSEP $3; us[k] = $10; rps[k] = $5; err[k] = $9; if (!($3 in p)) { p[$3] = 1; protos[++np] = $3 } }
	END {
		for (i = 1; i <= np; i++) {
			pr = protos[i]; c = "portcullis" SUBSEP pr; h = "haproxy" SUBSEP pr; g = "nginx" SUBSEP pr
			if (!(c in us)) continue
			a = ""
			if ((h in us) && us[h] + 0 > 0) a = a sprintf("haproxy %s us (%.2fx)", us[h], us[c] / us[h])
			if ((g in us) && us[g] + 0 > 0) a = a (a == "" ? "" : ", ") sprintf("nginx %s us (%.2fx)", us[g], us[c] / us[g])
			printf "%s proxy CPU per request (%.0f req/s, %d errors)\t%s us\t%s\n", pr, rps[c], err[c], us[c], (a == "" ? "-" : a)
		}
	}' "$tsv")
}

part_failover() {
	if ! is_root; then
		status failover "skipped: needs root (network namespaces, XDP)"
		return
	fi
	if ! have ip; then
		status failover "skipped: iproute2 (ip) is not installed"
		return
	fi
	local args=(-quick) note=""
	if ! have keepalived; then
		# shellcheck disable=SC2054 # one argument, a comma-separated list
		args+=(-settings fast,lan)
		note=" (keepalived not installed: Portcullis settings only)"
	fi
	local log=$OUT/failover.txt rc=0
	bounded failover 420 "$log" bash bench/failover/run.sh "${args[@]}" || rc=$?
	finish failover "$rc" "$log"
	[ -n "$note" ] && STATUS[${#STATUS[@]}-1]+=$note
	# setting (26 columns) runs median max min all...
	while IFS=$'\t' read -r what value against; do
		row failover "$what" "$value" "$against"
	done < <(awk '
	/^setting +runs +median/ { on = 1; next }
	on && NF >= 5 {
		label = substr($0, 1, 26); sub(/ +$/, "", label)
		split(substr($0, 27), f, " ")
		if (f[1] + 0 == 0) { printf "gap, %s\tno run\t%s\n", label, substr($0, 27); next }
		printf "gap, %s (%d runs)\tmedian %s\tmax %s, min %s\n", label, f[1], f[2], f[3], f[4]
	}' "$log")
}

part_bgp() {
	if ! is_root; then
		status bgp "skipped: needs root (network namespaces, XDP)"
		return
	fi
	if ! have bird && [ ! -x /usr/sbin/bird ]; then
		status bgp "skipped: bird2 is not installed (apt-get install bird2)"
		return
	fi
	local log=$OUT/bgp.txt ref=$OUT/bgp-bird.txt rc=0
	# The default timers' crash waits out a 90 s hold time: docs/bgp.md
	# has that number; here the settings that finish in seconds, with the
	# daemon's own speaker and then bird2 in its place (the peer).
	local settings=kill,hold3,bfd100,bfd300
	bounded bgp 200 "$log" sh bench/bgp/run.sh -quick -settings $settings || rc=$?
	[ "$rc" = 0 ] && { bounded bgp 200 "$ref" sh bench/bgp/run.sh -quick -settings $settings -speaker bird || rc=$?; }
	finish bgp "$rc" "$log"
	# setting (24 columns) runs min median max flows-ok all...
	while IFS=$'\t' read -r what value against; do
		row bgp "$what" "$value" "$against"
	done < <(awk '
	FNR == 1 { file++ }
	/^setting +runs +min +median/ { on = 1; next }
	/^$/ { on = 0 }
	on && NF >= 6 {
		label = substr($0, 1, 24); sub(/ +$/, "", label)
		split(substr($0, 25), f, " ")
		if (file == 2) { bird[label] = f[3]; next }
		order[++n] = label; runs[label] = f[1]; med[label] = f[3]; mx[label] = f[4]; ok[label] = f[5]
	}
	END {
		for (i = 1; i <= n; i++) {
			l = order[i]
			if (runs[l] + 0 == 0) { printf "route drop, %s\tno run\t-\n", l; continue }
			printf "route drop, %s (%d runs, flows kept %s)\tmedian %s, max %s\tbird2 as speaker: %s\n", l, runs[l], ok[l], med[l], mx[l], (l in bird ? bird[l] : "-")
		}
	}' "$log" "$ref" 2>/dev/null)
}

say "raw outputs in $OUT; budget ${BUDGET}s; parts: $PARTS"
for p in $PARTS; do
	case $p in
	maglev | xdp | l7 | failover | bgp) "part_$p" ;;
	*) status "$p" "skipped: unknown part (want maglev, xdp, l7, failover, bgp)" ;;
	esac
done

took=$(($(date +%s) - START))
echo
echo "== Portcullis benchmarks: $(date -u +%FT%TZ), $(nproc) CPUs, $(uname -r), $($GO version | awk '{print $3}'), ${took}s"
echo
{
	printf 'part\tmeasurement\tvalue\tagainst\n'
	for r in "${ROWS[@]}"; do printf '%s\n' "$r"; done
} | if have column; then column -t -s $'\t'; else tr '\t' ' '; fi
echo
for s in "${STATUS[@]}"; do echo "   $s"; done
echo "   raw outputs: $OUT"
echo "   compare within one run only (docs/benchmarks.md); xdp: trimmed mean of ns/pkt, median over $XDP_COUNT runs"
# Skipped parts are fine (a machine without root or peers); a failed one is not.
for s in "${STATUS[@]}"; do
	case $s in *" failed: "*) exit 1 ;; esac
done
exit 0
