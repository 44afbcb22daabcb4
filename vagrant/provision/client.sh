#!/usr/bin/env bash
# client.sh - the Vagrant lab's client VM: curl, and a probe loop
# (`vip-probe URL`: one new connection every 100 ms, printing who answered).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
command -v curl >/dev/null || { apt-get update -q && apt-get install -y -q curl; }
cat >/usr/local/bin/vip-probe <<'PROBE'
#!/usr/bin/env bash
# vip-probe URL [SECONDS]: a new connection every 100 ms for SECONDS (10).
url=${1:?usage: vip-probe URL [SECONDS]}
end=$(( $(date +%s) + ${2:-10} ))
while [ "$(date +%s)" -lt "$end" ]; do
	printf '%s %s\n' "$(date +%T.%N | cut -c1-12)" "$(curl -s -m 0.3 "$url" || echo FAIL)"
	sleep 0.1
done
PROBE
chmod 0755 /usr/local/bin/vip-probe
