#!/usr/bin/env bash
# lb.sh NODE_FILE - provision a Portcullis load-balancer VM of the Vagrant
# lab: install Portcullis, render configs/ha-pair/NODE_FILE (node-a.yaml or
# node-b.yaml) for the VMs' addresses with render-config.sh, start it.
#
# The repository is at /portcullis (the Vagrantfile's synced folder).
# Install source, first found: the newest /portcullis/dist/portcullis_*.deb
# (`make deb`), else /portcullis/bin/portcullis (`make build`) with the
# unit and sysctls of packaging/. The environment carries render-config.sh's
# variables (the Vagrantfile's address plan); IFACE may be empty: the
# interface that holds this node's address is used. GOSSIP_KEY_FILE and
# ADMIN_TOKEN_FILE name files shared by both nodes (made by the Vagrantfile).
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 node-a.yaml|node-b.yaml" >&2; exit 2; }
node_file=$1
repo=${REPO:-/portcullis}
export DEBIAN_FRONTEND=noninteractive

case "$node_file" in
node-a.yaml) my_ip=$LB_A_IP ;;
node-b.yaml) my_ip=$LB_B_IP ;;
*) echo "$0: unknown node file $node_file" >&2; exit 2 ;;
esac
if [ -z "${IFACE:-}" ]; then
	IFACE=$(ip -o -4 addr show | awk -v ip="$my_ip" '{split($4, a, "/"); if (a[1] == ip) print $2}' | head -n1)
	[ -n "$IFACE" ] || { echo "$0: no interface holds $my_ip" >&2; exit 1; }
	export IFACE
fi

deb=$(ls "$repo"/dist/portcullis_*.deb 2>/dev/null | sort -V | tail -n1 || true)
if [ -n "$deb" ]; then
	echo "lb.sh: installing $deb"
	apt-get install -y -q "$deb"
elif [ -x "$repo/bin/portcullis" ]; then
	echo "lb.sh: no dist/portcullis_*.deb; installing $repo/bin/portcullis"
	apt-get install -y -q iproute2 ethtool >/dev/null
	install -m 0755 "$repo/bin/portcullis" /usr/bin/portcullis
	install -d -m 0750 /etc/portcullis
	if [ -f "$repo/packaging/portcullis.service" ]; then
		install -m 0644 "$repo/packaging/portcullis.service" /etc/systemd/system/portcullis.service
	else
		printf '[Unit]\nDescription=Portcullis\nAfter=network-online.target\nWants=network-online.target\n[Service]\nExecStart=/usr/bin/portcullis run --config /etc/portcullis/portcullis.yaml\nExecReload=/bin/kill -HUP $MAINPID\nRestart=on-failure\n[Install]\nWantedBy=multi-user.target\n' >/etc/systemd/system/portcullis.service
	fi
	if [ -f "$repo/packaging/sysctl/60-portcullis.conf" ]; then
		install -m 0644 "$repo/packaging/sysctl/60-portcullis.conf" /etc/sysctl.d/60-portcullis.conf
		sysctl -q --system >/dev/null || true
	fi
	systemctl daemon-reload
else
	echo "$0: neither $repo/dist/portcullis_*.deb nor $repo/bin/portcullis: run 'make build' (or 'make deb') on the host, then 'vagrant provision'" >&2
	exit 1
fi

install -d -m 0750 /etc/portcullis
install -m 0600 "$GOSSIP_KEY_FILE" /etc/portcullis/gossip.key
install -m 0600 "$ADMIN_TOKEN_FILE" /etc/portcullis/admin.token
TOKEN_FILE=/etc/portcullis/admin.token "$repo/vagrant/provision/render-config.sh" \
	"$repo/configs/ha-pair/$node_file" /etc/portcullis/portcullis.yaml
chmod 0640 /etc/portcullis/portcullis.yaml
portcullis validate --config /etc/portcullis/portcullis.yaml
systemctl enable portcullis.service
systemctl restart portcullis.service
echo "lb.sh: portcullis runs with $node_file on $IFACE ($my_ip); dashboard http://$my_ip:9900/"
