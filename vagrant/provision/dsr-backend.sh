#!/usr/bin/env bash
# dsr-backend.sh - a backend behind a Portcullis `forwarding: dsr-l2` VIP:
# the DSR kernel settings, the VIPs on lo and a tiny HTTP server. One
# script for both labs: `make lab` runs `setup` and `serve` in each backend
# namespace (internal/halab), Vagrant runs `install` on each backend VM.
#
#   dsr-backend.sh setup IFACE VIP...     sysctls (below) + each VIP /32 on lo
#   dsr-backend.sh serve NAME [PORT...]   HTTP on 0.0.0.0:PORT (default 443
#                                         and 8080), in the foreground
#   dsr-backend.sh install NAME IFACE VIP...
#                                         setup, then make it survive a
#                                         reboot: /etc/sysctl.d file and two
#                                         systemd units (VIPs on lo, server)
#
# The sysctls are packaging/sysctl/dsr-backend-sysctl.conf (arp_ignore=1,
# arp_announce=2, loose rp_filter on all and the interface), the file the
# .deb ships for backends, with eth0 replaced by IFACE; DSR_SYSCTL names
# another file. They are written to /proc/sys directly (no procps needed),
# so in a network namespace they set that namespace's values.
#
# The server answers every path with "NAME from CLIENT_IP" (the client for
# tcp-443's DSR, the proxy node for the http VIP's pool) and /healthz with
# "ok": the ha-pair configs health-check both ports.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
sysctl_file=${DSR_SYSCTL:-$here/../../packaging/sysctl/dsr-backend-sysctl.conf}

usage() { sed -n '2,/^set /p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2; exit 2; }

# sysctl_lines IFACE: "key value" per setting of the file, eth0 -> IFACE.
sysctl_lines() {
	[ -r "$sysctl_file" ] || { echo "$0: $sysctl_file not found (set DSR_SYSCTL)" >&2; exit 1; }
	sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$sysctl_file" |
		sed -E "s/^[[:space:]]*([^=[:space:]]+)[[:space:]]*=[[:space:]]*([^[:space:]]+).*/\1 \2/" |
		sed -E "s/\.eth0\./.$1./"
}

setup() {
	[ $# -ge 2 ] || usage
	iface=$1
	shift
	sysctl_lines "$iface" | while read -r key value; do
		echo "$value" >"/proc/sys/${key//.//}"
	done
	for vip in "$@"; do
		ip addr replace "$vip/32" dev lo
	done
	ip link set lo up
}

serve() {
	[ $# -ge 1 ] || usage
	command -v python3 >/dev/null || { echo "$0: python3 is needed for the HTTP server" >&2; exit 1; }
	exec python3 -c '
import http.server, socketserver, sys, threading
name, ports = sys.argv[1], [int(p) for p in sys.argv[2:]] or [443, 8080]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = ("ok\n" if self.path == "/healthz" else "%s from %s\n" % (name, self.client_address[0])).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_HEAD = do_GET
    def log_message(self, *a): pass
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
servers = [S(("0.0.0.0", p), H) for p in ports]
print("%s: serving HTTP on %s" % (name, ", ".join(str(p) for p in ports)), flush=True)
for s in servers[1:]:
    threading.Thread(target=s.serve_forever, daemon=True).start()
servers[0].serve_forever()
' "$@"
}

install_units() {
	[ $# -ge 3 ] || usage
	name=$1 iface=$2
	shift 2
	setup "$iface" "$@"
	sysctl_lines "$iface" | sed 's/ / = /' >/etc/sysctl.d/60-portcullis-dsr-backend.conf
	install -m 0755 "$0" /usr/local/sbin/portcullis-dsr-backend
	install -m 0644 "$sysctl_file" /usr/local/share/portcullis-dsr-backend-sysctl.conf
	cat >/etc/systemd/system/portcullis-dsr-vips.service <<UNIT
[Unit]
Description=Portcullis DSR VIPs on lo ($*)
After=network.target
[Service]
Type=oneshot
RemainAfterExit=yes
Environment=DSR_SYSCTL=/usr/local/share/portcullis-dsr-backend-sysctl.conf
ExecStart=/usr/local/sbin/portcullis-dsr-backend setup $iface $*
[Install]
WantedBy=multi-user.target
UNIT
	cat >/etc/systemd/system/portcullis-demo-backend.service <<UNIT
[Unit]
Description=Portcullis lab backend $name (HTTP on 443 and 8080)
After=portcullis-dsr-vips.service
[Service]
ExecStart=/usr/local/sbin/portcullis-dsr-backend serve $name 443 8080
Restart=always
[Install]
WantedBy=multi-user.target
UNIT
	systemctl daemon-reload
	systemctl enable --now portcullis-dsr-vips.service portcullis-demo-backend.service
}

[ $# -ge 1 ] || usage
cmd=$1
shift
case "$cmd" in
setup) setup "$@" ;;
serve) serve "$@" ;;
install) install_units "$@" ;;
*) usage ;;
esac
