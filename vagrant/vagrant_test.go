// Package vagrant holds the Vagrant lab (Vagrantfile, provision/) and the
// test that checks it without running it: Vagrant and VMs are not
// available where the tests run.
package vagrant

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/portcullis-lb/portcullis/internal/config"
)

// TestVagrantfileParses is `ruby -c Vagrantfile`.
func TestVagrantfileParses(t *testing.T) {
	ruby, err := exec.LookPath("ruby")
	if err != nil {
		t.Skip("ruby is not installed (Debian package ruby): cannot syntax-check the Vagrantfile")
	}
	out, err := exec.Command(ruby, "-c", "Vagrantfile").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Syntax OK") {
		t.Fatalf("ruby -c Vagrantfile: %v\n%s", err, out)
	}
}

// TestProvisionScriptsParse is `bash -n` on every provisioning script.
func TestProvisionScriptsParse(t *testing.T) {
	scripts, _ := filepath.Glob("provision/*.sh")
	if len(scripts) < 5 {
		t.Fatalf("found %d provisioning scripts, want lb, backend, dsr-backend, client, render-config", len(scripts))
	}
	for _, s := range scripts {
		if out, err := exec.Command("bash", "-n", s).CombinedOutput(); err != nil {
			t.Errorf("bash -n %s: %v\n%s", s, err, out)
		}
		if fi, err := os.Stat(s); err != nil || fi.Mode()&0o111 == 0 {
			t.Errorf("%s is not executable", s)
		}
	}
}

type machine struct {
	name, ip, mac, role, config string
}

// vagrantfile is the address plan read from the Vagrantfile's MACHINES,
// VIPS and RENDER_ENV (one entry per line, as its header asks).
type vagrantfile struct {
	machines map[string]machine
	vips     map[string]string
	env      map[string]string
	text     string
}

var (
	machineRE = regexp.MustCompile(`(?m)^\s*"([a-z0-9-]+)"\s*=>\s*\{\s*ip:\s*"([0-9.]+)",\s*mac:\s*"([0-9a-f:]+)",\s*role:\s*"([a-z]+)"(?:,\s*config:\s*"([a-z.-]+)")?\s*\},?\s*$`)
	vipRE     = regexp.MustCompile(`(?m)^\s*"(tcp-443|http)"\s*=>\s*"([0-9.]+)",?\s*$`)
	envRE     = regexp.MustCompile(`(?m)^\s*"([A-Z0-9_]+)"\s*=>\s*(.+?),?\s*$`)
	refRE     = regexp.MustCompile(`^MACHINES\["([a-z0-9-]+)"\]\[:(ip|mac)\]$`)
	vipRefRE  = regexp.MustCompile(`^VIPS\["([a-z0-9-]+)"\]$`)
	strRE     = regexp.MustCompile(`^"([^"]*)"$`)
)

func readVagrantfile(t *testing.T) vagrantfile {
	t.Helper()
	b, err := os.ReadFile("Vagrantfile")
	if err != nil {
		t.Fatal(err)
	}
	v := vagrantfile{machines: map[string]machine{}, vips: map[string]string{}, env: map[string]string{}, text: string(b)}
	for _, m := range machineRE.FindAllStringSubmatch(v.text, -1) {
		v.machines[m[1]] = machine{name: m[1], ip: m[2], mac: m[3], role: m[4], config: m[5]}
	}
	for _, m := range vipRE.FindAllStringSubmatch(v.text, -1) {
		v.vips[m[1]] = m[2]
	}
	_, block, ok := strings.Cut(v.text, "RENDER_ENV = {")
	if !ok {
		t.Fatal("no RENDER_ENV in the Vagrantfile")
	}
	block, _, _ = strings.Cut(block, "\n}")
	for _, m := range envRE.FindAllStringSubmatch(block, -1) {
		expr := strings.TrimSpace(m[2])
		switch {
		case refRE.MatchString(expr):
			r := refRE.FindStringSubmatch(expr)
			mc, ok := v.machines[r[1]]
			if !ok {
				t.Fatalf("RENDER_ENV %s names machine %q, not in MACHINES", m[1], r[1])
			}
			v.env[m[1]] = map[string]string{"ip": mc.ip, "mac": mc.mac}[r[2]]
		case vipRefRE.MatchString(expr):
			r := vipRefRE.FindStringSubmatch(expr)
			if v.vips[r[1]] == "" {
				t.Fatalf("RENDER_ENV %s names VIP %q, not in VIPS", m[1], r[1])
			}
			v.env[m[1]] = v.vips[r[1]]
		case strRE.MatchString(expr):
			v.env[m[1]] = strRE.FindStringSubmatch(expr)[1]
		default:
			t.Fatalf("RENDER_ENV %s = %s: the test reads only MACHINES[...][:ip|:mac], VIPS[...] and strings", m[1], expr)
		}
	}
	return v
}

// TestVagrantfileMatchesHAPair renders configs/ha-pair for the VMs with
// provision/render-config.sh, as provision/lb.sh does, validates the
// result, and checks every address, MAC and port in it against the
// Vagrantfile's machines and what provision/ starts on them.
func TestVagrantfileMatchesHAPair(t *testing.T) {
	v := readVagrantfile(t)
	roles := map[string][]machine{}
	var names []string
	for n := range v.machines {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		roles[v.machines[n].role] = append(roles[v.machines[n].role], v.machines[n])
	}
	if len(roles["lb"]) != 2 || len(roles["backend"]) != 3 || len(roles["client"]) != 1 || len(roles["witness"]) != 1 {
		t.Fatalf("machines by role: %v; want 2 lb, 3 backend, 1 client, 1 witness", roles)
	}
	// One private /24, no address or MAC twice.
	seen := map[string]string{}
	var net netip.Prefix
	for _, n := range names {
		m := v.machines[n]
		ip, err := netip.ParseAddr(m.ip)
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		p, _ := ip.Prefix(24)
		if !net.IsValid() {
			net = p
		} else if p != net {
			t.Errorf("%s %s is not in %s", n, ip, net)
		}
		for _, k := range []string{m.ip, m.mac} {
			if other, dup := seen[k]; dup {
				t.Errorf("%s and %s share %s", other, n, k)
			}
			seen[k] = n
		}
	}
	for name, a := range v.vips {
		ip := netip.MustParseAddr(a)
		if !net.Contains(ip) {
			t.Errorf("VIP %s %s is not in %s", name, ip, net)
		}
		if other, dup := seen[a]; dup {
			t.Errorf("VIP %s %s is also %s's address", name, a, other)
		}
	}

	dsr, err := os.ReadFile("provision/dsr-backend.sh")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	key, err := os.ReadFile("../configs/ha-pair/gossip.key")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "gossip.key"), key, 0o600)
	os.WriteFile(filepath.Join(dir, "admin.token"), []byte("vagrant-test-token\n"), 0o600)
	for _, lb := range roles["lb"] {
		t.Run(lb.name, func(t *testing.T) {
			out := filepath.Join(dir, lb.name+".yaml")
			cmd := exec.Command("bash", "provision/render-config.sh", filepath.Join("..", "configs", "ha-pair", lb.config), out)
			cmd.Env = os.Environ()
			for k, val := range v.env {
				cmd.Env = append(cmd.Env, k+"="+val)
			}
			// lb.sh finds the interface and the token file on the VM.
			cmd.Env = append(cmd.Env, "IFACE=eth1", "TOKEN_FILE="+filepath.Join(dir, "admin.token"))
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("render-config.sh: %v\n%s", err, b)
			}
			c, err := config.Load(out)
			if err != nil {
				t.Fatalf("the rendered %s does not validate: %v", lb.config, err)
			}
			check := func(what, got, want string) {
				t.Helper()
				if !strings.EqualFold(got, want) {
					t.Errorf("%s: %s is %q, want %q", lb.config, what, got, want)
				}
			}
			a, b := v.machines["lb-a"], v.machines["lb-b"]
			check("node.name", c.Node.Name, lb.name)
			check("cluster.bind", c.Cluster.Bind, lb.ip+":7946")
			check("cluster.peers", strings.Join(c.Cluster.Peers, ","), a.ip+":7946,"+b.ip+":7946")
			if c.Cluster.Witness == nil {
				t.Fatal("no cluster.witness")
			}
			check("cluster.witness.address", c.Cluster.Witness.Address, v.machines["witness"].ip)
			_, port, _ := strings.Cut(c.Admin.Listen, ":")
			check("admin.listen", c.Admin.Listen, "0.0.0.0:"+port)
			for _, m := range roles["lb"] {
				if url := fmt.Sprintf("http://%s:%s/", m.ip, port); !strings.Contains(v.text, url) {
					t.Errorf("the Vagrantfile does not give %s's dashboard URL %s", m.name, url)
				}
			}
			vips := map[string]config.VIP{}
			for _, x := range c.VIPs {
				vips[x.Name] = x
			}
			tcp, web := vips["tcp-443"], vips["http"]
			check("vips[tcp-443].address", tcp.Address, v.vips["tcp-443"])
			check("vips[http].address", web.Address, v.vips["http"])
			if len(tcp.Backends) != 3 {
				t.Fatalf("tcp-443 has %d backends, want 3", len(tcp.Backends))
			}
			for i, be := range roles["backend"] {
				check(fmt.Sprintf("vips[tcp-443].backends[%d].address", i), tcp.Backends[i].Address, be.ip)
				check(fmt.Sprintf("vips[tcp-443].backends[%d].mac", i), tcp.Backends[i].MAC, be.mac)
				// Each backend VM gets the tcp-443 VIP on lo (backend.sh).
				if !strings.Contains(v.text, `args: [name, m[:ip], VIPS["tcp-443"]]`) {
					t.Errorf("the backends are not provisioned with the tcp-443 VIP")
				}
			}
			// The backend server serves the VIP's port and the pool's port.
			_, poolPort, _ := strings.Cut(c.L7.Pools[0].Endpoints[0].Address, ":")
			if serve := fmt.Sprintf("serve $name %d %s", tcp.Port, poolPort); !strings.Contains(string(dsr), serve) {
				t.Errorf("provision/dsr-backend.sh does not run %q: the backends would not serve tcp-443's port %d and the pool's port %s", serve, tcp.Port, poolPort)
			}
			var eps []string
			for _, e := range c.L7.Pools[0].Endpoints {
				eps = append(eps, e.Address)
			}
			check("l7.pools[0].endpoints", strings.Join(eps, ","), v.machines["be1"].ip+":"+poolPort+","+v.machines["be2"].ip+":"+poolPort)
			if len(web.Backends) != 2 {
				t.Fatalf("http has %d backends, want 2", len(web.Backends))
			}
			for i, m := range []machine{a, b} {
				be := web.Backends[i]
				check(fmt.Sprintf("vips[http].backends[%d].address", i), be.Address, m.ip)
				if m.name == lb.name {
					check(fmt.Sprintf("vips[http].backends[%d].forwarding", i), be.Forwarding, "local")
				} else {
					check(fmt.Sprintf("vips[http].backends[%d].mac", i), be.MAC, m.mac)
				}
			}
		})
	}
}
