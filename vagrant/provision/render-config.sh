#!/usr/bin/env bash
# render-config.sh SRC OUT - write configs/ha-pair/node-{a,b}.yaml (SRC) to
# OUT with the example network's addresses replaced by a real network's.
# Used by the Vagrant LB nodes (vagrant/provision/lb.sh) and by `make lab`
# (internal/halab), so both run the ha-pair files themselves, changed only
# here.
#
# The ha-pair example network (see the header of node-a.yaml) and the
# variable that replaces each part of it; every variable is required:
#
#   192.0.2.1          WITNESS_IP   the witness (in node-a.yaml: the gateway)
#   192.0.2.2 / .3     LB_A_IP / LB_B_IP
#   52:54:00:00:02:02  LB_A_MAC     (and 02:03 LB_B_MAC)
#   192.0.2.10         VIP_TCP      the tcp-443 VIP (DSR to the backends)
#   192.0.2.80         VIP_HTTP     the http VIP (the L7 proxies)
#   192.0.2.11-13      BE1_IP BE2_IP BE3_IP, MACs 52:54:00:00:02:11-13
#                      BE1_MAC BE2_MAC BE3_MAC
#   198.51.100.21-22   APP1_IP APP2_IP (the L7 pool's app servers, :8080)
#   interface: eth0    IFACE
#   127.0.0.1:9900     ADMIN_LISTEN (the admin listener and dashboard)
#   # token_file: ...  TOKEN_FILE   (uncommented: the admin token's file)
#   xdp_mode: auto     XDP_MODE
#
# Addresses are replaced as whole words (192.0.2.1 never inside
# 192.0.2.10). The result is checked: no example address may remain
# outside comments (MACs may stay: the Vagrant VMs use the example's).
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 SRC OUT" >&2; exit 2; }
src=$1 out=$2
for v in WITNESS_IP LB_A_IP LB_B_IP LB_A_MAC LB_B_MAC VIP_TCP VIP_HTTP \
	BE1_IP BE2_IP BE3_IP BE1_MAC BE2_MAC BE3_MAC APP1_IP APP2_IP \
	IFACE ADMIN_LISTEN TOKEN_FILE XDP_MODE; do
	[ -n "${!v:-}" ] || { echo "$0: $v is not set" >&2; exit 2; }
done

sed -E \
	-e "s/\b192\.0\.2\.1\b/${WITNESS_IP}/g" \
	-e "s/\b192\.0\.2\.2\b/${LB_A_IP}/g" \
	-e "s/\b192\.0\.2\.3\b/${LB_B_IP}/g" \
	-e "s/\b192\.0\.2\.10\b/${VIP_TCP}/g" \
	-e "s/\b192\.0\.2\.80\b/${VIP_HTTP}/g" \
	-e "s/\b192\.0\.2\.11\b/${BE1_IP}/g" \
	-e "s/\b192\.0\.2\.12\b/${BE2_IP}/g" \
	-e "s/\b192\.0\.2\.13\b/${BE3_IP}/g" \
	-e "s/\b198\.51\.100\.21\b/${APP1_IP}/g" \
	-e "s/\b198\.51\.100\.22\b/${APP2_IP}/g" \
	-e "s/52:54:00:00:02:02/${LB_A_MAC}/Ig" \
	-e "s/52:54:00:00:02:03/${LB_B_MAC}/Ig" \
	-e "s/52:54:00:00:02:11/${BE1_MAC}/Ig" \
	-e "s/52:54:00:00:02:12/${BE2_MAC}/Ig" \
	-e "s/52:54:00:00:02:13/${BE3_MAC}/Ig" \
	-e "s/^( *)interface: eth0\b/\1interface: ${IFACE}/" \
	-e "s/^( *)listen: 127\.0\.0\.1:9900\b/\1listen: ${ADMIN_LISTEN}/" \
	-e "s|^( *)# token_file: /etc/portcullis/admin\.token|\1token_file: ${TOKEN_FILE}|" \
	-e "s/^( *)xdp_mode: auto\b/\1xdp_mode: ${XDP_MODE}/" \
	"$src" >"$out.tmp"

if sed -e 's/#.*//' "$out.tmp" | grep -nE '\b(192\.0\.2\.[0-9]+|198\.51\.100\.[0-9]+)\b'; then
	echo "$0: $src: example addresses left in $out (above): the ha-pair files changed; update this script" >&2
	rm -f "$out.tmp"
	exit 1
fi
mv "$out.tmp" "$out"
