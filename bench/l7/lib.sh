# bench/l7/lib.sh - shared pieces of the single-proxy scripts (jwt.sh,
# cachehit.sh): process tracking with cleanup on exit, the harness's CPU
# pinning (backend CPU 0, load generator CPU 1), and CPU per request.
# Sourced, not run.

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -TERM -- "-$p" 2>/dev/null || kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

PIN0='' PIN1=''
if [ "$(nproc)" -ge 2 ]; then PIN0="taskset -c 0" PIN1="taskset -c 1"; fi

TCK=$(getconf CLK_TCK)
# cpu PID: user+system clock ticks of the process so far.
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }
# us_per_req TICKS_BEFORE TICKS_AFTER REQUESTS
us_per_req() { echo "($2 - $1) * 1000000 / $TCK / $3" | bc -l; }
# median_of NAME FILE: the median of column 4 over the rows whose column 2
# is NAME (rows: round name requests us/req ...).
median_of() { awk -v n="$1" '$2==n {print $4}' "$2" | sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
# needs CMD...: exit 2 naming the first missing command.
needs() { for t in "$@"; do command -v "$t" >/dev/null || { echo "needs $t" >&2; exit 2; }; done; }
