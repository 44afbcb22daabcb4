package bgp

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	bgppkt "github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// router is a second, independent GoBGP server standing in for the
// upstream router: it listens on 127.0.0.2 and accepts our speaker
// (127.0.0.1) as an eBGP neighbour. What it learns is what a router would.
type router struct {
	srv  *server.BgpServer
	port int
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("no 127.0.0.2 on lo: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func newRouter(t *testing.T, holdTime uint64) *router {
	t.Helper()
	r := &router{srv: server.NewBgpServer(), port: freePort(t)}
	go r.srv.Serve()
	ctx := context.Background()
	if err := r.srv.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{Asn: 65000, RouterId: "10.255.0.1",
		ListenPort: int32(r.port), ListenAddresses: []string{"127.0.0.2"}}}); err != nil {
		t.Fatal(err)
	}
	if err := r.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: &api.Peer{
		Conf:      &api.PeerConf{NeighborAddress: "127.0.0.1", PeerAsn: 65001},
		Timers:    &api.Timers{Config: &api.TimersConfig{HoldTime: holdTime, KeepaliveInterval: holdTime / 3, ConnectRetry: 1, IdleHoldTimeAfterReset: 1}},
		Transport: &api.Transport{PassiveMode: true},
	}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.srv.Stop)
	return r
}

// routes is the router's RIB: prefix → next hop and communities.
func (r *router) routes(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := r.srv.ListPath(apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Family: bgppkt.RF_IPv4_UC},
		func(prefix bgppkt.NLRI, paths []*apiutil.Path) {
			for _, p := range paths {
				var desc []string
				for _, a := range p.Attrs {
					switch a := a.(type) {
					case *bgppkt.PathAttributeNextHop:
						desc = append(desc, "nh="+a.Value.String())
					case *bgppkt.PathAttributeCommunities:
						for _, c := range a.Value {
							desc = append(desc, fmt.Sprintf("c=%d:%d", c>>16, c&0xffff))
						}
					}
				}
				out[prefix.String()] = strings.Join(desc, " ")
			}
		})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (r *router) sessionState(t *testing.T) api.PeerState_SessionState {
	t.Helper()
	var st api.PeerState_SessionState
	_ = r.srv.ListPeer(context.Background(), &api.ListPeerRequest{Address: "127.0.0.1"}, func(p *api.Peer) {
		st = p.GetState().GetSessionState()
	})
	return st
}

func eventually(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func speakerConfig(r *router) Config {
	return Config{ASN: 65001, RouterID: netip.MustParseAddr("10.255.0.11"), ListenPort: -1,
		Peers: []Peer{{Address: netip.MustParseAddr("127.0.0.2"), Port: uint16(r.port), ASN: 65000,
			HoldTime: 9 * time.Second, Keepalive: 3 * time.Second, ConnectRetry: time.Second}}}
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return nil
}

var (
	vipA = netip.MustParsePrefix("10.79.100.1/32")
	vipB = netip.MustParsePrefix("10.79.100.2/32")
)

func TestSpeakerAnnouncesAndWithdraws(t *testing.T) {
	r := newRouter(t, 9)
	sp, err := Start(speakerConfig(r), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Stop(context.Background())
	eventually(t, "the session", 15*time.Second, func() bool {
		p := sp.Peers()
		return len(p) == 1 && p[0].State == "established"
	})

	// Two VIPs: one announced with communities, one held back.
	c := uint32(65001)<<16 | 100
	if err := sp.Apply([]Want{
		{Name: "web", Prefix: vipA, Communities: []uint32{c, 0xffffff01}, Announce: true, Reason: ReasonServing},
		{Name: "api", Prefix: vipB, Announce: false, Reason: ReasonNoBackend},
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the router to learn web", 5*time.Second, func() bool { _, ok := r.routes(t)["10.79.100.1/32"]; return ok })
	got := r.routes(t)
	if want := "nh=127.0.0.1 c=65001:100 c=65535:65281"; got["10.79.100.1/32"] != want {
		t.Errorf("router has web as %q, want %q (next hop self, both communities)", got["10.79.100.1/32"], want)
	}
	if _, ok := got["10.79.100.2/32"]; ok {
		t.Errorf("api was announced although its decision was %s", ReasonNoBackend)
	}

	// Applying the same wants again changes nothing; then api comes up and
	// web loses its backends.
	if err := sp.Apply([]Want{
		{Name: "web", Prefix: vipA, Communities: []uint32{c, 0xffffff01}, Announce: true, Reason: ReasonServing},
		{Name: "api", Prefix: vipB, Announce: true, Reason: ReasonServing},
	}); err != nil {
		t.Fatal(err)
	}
	if err := sp.Apply([]Want{
		{Name: "web", Prefix: vipA, Announce: false, Reason: ReasonNoBackend},
		{Name: "api", Prefix: vipB, Announce: true, Reason: ReasonServing},
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "web withdrawn and api announced", 5*time.Second, func() bool {
		rt := r.routes(t)
		_, web := rt["10.79.100.1/32"]
		_, api := rt["10.79.100.2/32"]
		return !web && api
	})
	vips := sp.VIPs()
	if len(vips) != 2 || vips[0].VIP != "api" || !vips[0].Announced || vips[1].VIP != "web" || vips[1].Announced || vips[1].Reason != ReasonNoBackend {
		t.Errorf("VIPs() = %+v", vips)
	}
	if n := testutil.ToFloat64(sp.m.withdrawals.WithLabelValues("web", string(ReasonNoBackend))); n != 1 {
		t.Errorf("withdrawals{web,no_usable_backend} = %v, want 1", n)
	}
	if n := testutil.ToFloat64(sp.m.announcedG.WithLabelValues("api")); n != 1 {
		t.Errorf("announced{api} = %v, want 1", n)
	}

	// A VIP that leaves the config is withdrawn and forgotten.
	if err := sp.Apply([]Want{{Name: "web", Prefix: vipA, Announce: false, Reason: ReasonNoBackend}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "api withdrawn", 5*time.Second, func() bool { return len(r.routes(t)) == 0 })
	if n := testutil.ToFloat64(sp.m.withdrawals.WithLabelValues("api", string(ReasonUnconfigured))); n != 1 {
		t.Errorf("withdrawals{api,removed} = %v, want 1", n)
	}

	// What the router sends is received (adj-in, before policy) and never
	// enters the speaker's RIB.
	nlri, _ := bgppkt.NewIPAddrPrefix(netip.MustParsePrefix("192.0.2.0/24"))
	nh, _ := bgppkt.NewPathAttributeNextHop(netip.MustParseAddr("0.0.0.0"))
	if _, err := r.srv.AddPath(apiutil.AddPathRequest{Paths: []*apiutil.Path{{Family: bgppkt.RF_IPv4_UC, Nlri: nlri,
		Attrs: []bgppkt.PathAttributeInterface{bgppkt.NewPathAttributeOrigin(0), nh}}}}); err != nil {
		t.Fatal(err)
	}
	count := func(tt api.TableType, name string) int {
		n := 0
		_ = sp.srv.ListPath(apiutil.ListPathRequest{TableType: tt, Name: name, Family: bgppkt.RF_IPv4_UC},
			func(bgppkt.NLRI, []*apiutil.Path) { n++ })
		return n
	}
	eventually(t, "the router's route to reach the speaker", 5*time.Second, func() bool {
		return count(api.TableType_TABLE_TYPE_ADJ_IN, "127.0.0.2") == 1
	})
	if n := count(api.TableType_TABLE_TYPE_GLOBAL, ""); n != 0 { // web is withdrawn, api gone
		t.Errorf("the speaker's RIB has %d prefixes, want none: learned routes must be refused", n)
	}

	// The established gauge comes from the live session.
	reg := prometheus.NewRegistry()
	reg.MustRegister(sp.Collectors()...)
	if n, err := testutil.GatherAndCount(reg, "portcullis_bgp_peer_established"); err != nil || n != 1 {
		t.Errorf("portcullis_bgp_peer_established series: %d, %v", n, err)
	}
}

// Stop withdraws and closes the session with a NOTIFICATION: the router
// drops the routes at once, not at hold-timer expiry.
func TestSpeakerStopClosesTheSession(t *testing.T) {
	r := newRouter(t, 90)
	cfg := speakerConfig(r)
	cfg.Peers[0].HoldTime, cfg.Peers[0].Keepalive = 90*time.Second, 30*time.Second
	sp, err := Start(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the session", 15*time.Second, func() bool {
		return r.sessionState(t) == api.PeerState_SESSION_STATE_ESTABLISHED
	})
	if err := sp.Apply([]Want{{Name: "web", Prefix: vipA, Announce: true, Reason: ReasonServing}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the router to learn web", 5*time.Second, func() bool { return len(r.routes(t)) == 1 })
	start := time.Now()
	sp.Stop(context.Background())
	eventually(t, "the router to see the session close", 5*time.Second, func() bool {
		return r.sessionState(t) != api.PeerState_SESSION_STATE_ESTABLISHED && len(r.routes(t)) == 0
	})
	t.Logf("session closed and route gone %s after Stop (hold time 90s)", time.Since(start).Round(time.Millisecond))
}

// Update changes peers in place: a changed peer's session restarts, a
// removed peer goes, an added one connects; the announcements follow.
func TestSpeakerUpdatePeers(t *testing.T) {
	r1 := newRouter(t, 9)
	sp, err := Start(speakerConfig(r1), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Stop(context.Background())
	established := func(addr string) func() bool {
		return func() bool {
			return slices.ContainsFunc(sp.Peers(), func(p PeerStatus) bool { return p.Address == addr && p.State == "established" })
		}
	}
	eventually(t, "the session", 15*time.Second, established("127.0.0.2"))
	if err := sp.Apply([]Want{{Name: "web", Prefix: vipA, Announce: true, Reason: ReasonServing}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "r1 to learn web", 5*time.Second, func() bool { return len(r1.routes(t)) == 1 })

	// A new next hop is re-announced without a session restart.
	cfg := speakerConfig(r1)
	cfg.NextHop4 = netip.MustParseAddr("192.0.2.7")
	if err := sp.Update(cfg); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the new next hop", 5*time.Second, func() bool { return r1.routes(t)["10.79.100.1/32"] == "nh=192.0.2.7" })

	// Changing the ASN needs a restart: reported, the rest applies.
	cfg.ASN = 65009
	cfg.Peers[0].HoldTime, cfg.Peers[0].Keepalive = 6*time.Second, 2*time.Second // the router says 9: 6 wins
	if err := sp.Update(cfg); err == nil || !strings.Contains(err.Error(), "next restart") {
		t.Errorf("Update with a new ASN: %v, want ErrRestartRequired", err)
	}
	eventually(t, "the session to come back with the new hold time", 15*time.Second, func() bool {
		p := sp.Peers()
		return len(p) == 1 && p[0].State == "established" && p[0].HoldTime == 6
	})
	eventually(t, "web re-announced on the new session", 5*time.Second, func() bool { return len(r1.routes(t)) == 1 })

	// Removing the peer closes its session.
	cfg.Peers = nil
	if err := sp.Update(cfg); err != nil && !strings.Contains(err.Error(), "next restart") {
		t.Fatal(err)
	}
	eventually(t, "r1 to lose the session", 5*time.Second, func() bool {
		return r1.sessionState(t) != api.PeerState_SESSION_STATE_ESTABLISHED
	})
	if p := sp.Peers(); len(p) != 0 {
		t.Errorf("peers after removal: %+v", p)
	}
}

// graceful_restart is advertised with its restart time and both families,
// and is absent by default (a crashed node's routes must go at once).
func TestSpeakerGracefulRestartCapability(t *testing.T) {
	for _, gr := range []time.Duration{0, 120 * time.Second} {
		t.Run(gr.String(), func(t *testing.T) {
			r := newRouter(t, 9)
			cfg := speakerConfig(r)
			cfg.GracefulRestart = gr
			sp, err := Start(cfg, testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			defer sp.Stop(context.Background())
			eventually(t, "the session", 15*time.Second, func() bool {
				return r.sessionState(t) == api.PeerState_SESSION_STATE_ESTABLISHED
			})
			var got *api.GracefulRestartCapability
			_ = r.srv.ListPeer(context.Background(), &api.ListPeerRequest{Address: "127.0.0.1"}, func(p *api.Peer) {
				for _, c := range p.GetState().GetRemoteCap() {
					if g := c.GetGracefulRestart(); g != nil {
						got = g
					}
				}
			})
			switch {
			case gr == 0 && got != nil:
				t.Errorf("graceful restart advertised although off: %v", got)
			case gr > 0 && (got == nil || got.GetTime() != 120 || len(got.GetTuples()) != 2):
				t.Errorf("graceful restart capability = %v, want 120s for IPv4 and IPv6 unicast", got)
			}
		})
	}
}
