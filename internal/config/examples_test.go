package config

import (
	"os"
	"reflect"
	"testing"
)

// The HA pair example is two files that must agree on everything that makes
// the pair work (the Maglev input, the floating VIPs, the gossip key and
// peers) and differ where each node is itself; an edit to one file only
// would teach a reader a broken pair.
func TestTheHAPairExampleAgreesWhereItMust(t *testing.T) {
	a, err := Load("../../configs/ha-pair/node-a.yaml")
	if err != nil {
		t.Fatal(err)
	}
	b, err := Load("../../configs/ha-pair/node-b.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if a.L4.HashSeed != b.L4.HashSeed || a.L4.MaglevSize != b.L4.MaglevSize {
		t.Error("l4.hash_seed and l4.maglev_size differ: the nodes would build different Maglev tables")
	}
	// Maglev's input: VIPs, backend names, order and weights. Forwarding
	// and MAC differ by design for the proxies (local on their own node).
	type backend struct {
		Name, Address string
		Weight        int
	}
	type vip struct {
		Name, Address, Protocol string
		Port                    int
		Backends                []backend
	}
	maglevInput := func(c *Config) []vip {
		var out []vip
		for _, v := range c.VIPs {
			w := vip{Name: v.Name, Address: v.Address, Protocol: v.Protocol, Port: v.Port}
			for _, be := range v.Backends {
				w.Backends = append(w.Backends, backend{be.Name, be.Address, *be.Weight})
			}
			out = append(out, w)
		}
		return out
	}
	if !reflect.DeepEqual(maglevInput(a), maglevInput(b)) {
		t.Errorf("the VIPs differ:\n a: %+v\n b: %+v", maglevInput(a), maglevInput(b))
	}
	if !reflect.DeepEqual(a.Cluster.VIPs, b.Cluster.VIPs) || !reflect.DeepEqual(a.Cluster.Peers, b.Cluster.Peers) ||
		!reflect.DeepEqual(a.Cluster.Witness, b.Cluster.Witness) || a.Cluster.Profile != b.Cluster.Profile {
		t.Error("cluster.vips, peers, witness or profile differ")
	}
	ka, errA := a.Cluster.GossipKey()
	kb, errB := b.Cluster.GossipKey()
	if errA != nil || errB != nil || string(ka) != string(kb) {
		t.Errorf("the gossip keys differ or do not load: %v %v", errA, errB)
	}
	if a.Node.Name == b.Node.Name || a.Node.Priority == b.Node.Priority || a.Node.ID == b.Node.ID || a.Cluster.Bind == b.Cluster.Bind {
		t.Error("node.name, node.priority, node.id and cluster.bind must differ between the nodes")
	}
	// Each node's own proxy is local, the peer's is reached by DSR.
	for _, c := range []*Config{a, b} {
		for _, v := range c.VIPs {
			for _, be := range v.Backends {
				if be.Forwarding == "local" && be.Name != c.Node.Name+"-proxy" {
					t.Errorf("%s: VIP %s: backend %s is local but is not this node's proxy", c.Node.Name, v.Name, be.Name)
				}
			}
		}
	}
	// The shipped key is the documented example, never a real one.
	if key, err := os.ReadFile("../../configs/ha-pair/gossip.key"); err != nil || string(ka) != "EXAMPLE-GOSSIP-KEY-DO-NOT-USE!!!" {
		t.Errorf("configs/ha-pair/gossip.key (%q) is not the example key the configs describe: %v", key, err)
	}
}
