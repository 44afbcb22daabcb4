package bgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sort"
	"sync"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	bgppkt "github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"
)

// ErrRestartRequired is returned by Update when a setting changed that the
// running speaker cannot take (ASN, router id, listener, graceful restart):
// the rest of the update is applied, the changed setting at the next start.
var ErrRestartRequired = errors.New("bgp: the change takes effect at the next restart")

// Config is a speaker's settings (see config.BGP for their meaning).
type Config struct {
	ASN             uint32
	RouterID        netip.Addr
	ListenPort      int32 // -1: no listener
	ListenAddresses []string
	NextHop4        netip.Addr // zero: each session's local address
	NextHop6        netip.Addr
	GracefulRestart time.Duration // 0: off
	Peers           []Peer
}

// Peer is one session.
type Peer struct {
	Address      netip.Addr
	Port         uint16
	ASN          uint32
	Password     string
	HoldTime     time.Duration
	Keepalive    time.Duration
	ConnectRetry time.Duration
	Passive      bool
	MultihopTTL  uint8
	BFD          *BFD
}

// BFD timers of a session.
type BFD struct {
	MinTx, MinRx time.Duration
	Multiplier   uint32
}

// Want is what the daemon wants for one VIP: announced or not, and why.
type Want struct {
	Name        string
	Prefix      netip.Prefix
	Communities []uint32
	Announce    bool
	Reason      Reason
}

// VIPStatus is one VIP as the admin API shows it.
type VIPStatus struct {
	VIP       string    `json:"vip"`
	Prefix    string    `json:"prefix"`
	Announced bool      `json:"announced"`
	Reason    Reason    `json:"reason"`
	Since     time.Time `json:"since"`
}

// PeerStatus is one session as the admin API shows it.
type PeerStatus struct {
	Address string `json:"address"`
	ASN     uint32 `json:"asn"`
	// State is idle, connect, active, opensent, openconfirm or established.
	State string `json:"state"`
	// Since is when the session reached its state (established: uptime).
	Since            time.Time `json:"since,omitzero"`
	RouterID         string    `json:"router_id,omitempty"`
	HoldTime         uint64    `json:"hold_time_s"` // negotiated, seconds
	BFD              string    `json:"bfd,omitempty"`
	Flaps            uint32    `json:"flaps"`
	DisconnectReason string    `json:"last_disconnect_reason,omitempty"`
}

// Speaker is the embedded GoBGP server: it keeps sessions with the peers
// and announces exactly the prefixes of the Wants that say Announce.
//
// Every change goes through Apply, which diffs the wanted set against what
// is announced and sends only the difference, so calling it on every
// health poll costs nothing when nothing changed.
type Speaker struct {
	srv    *server.BgpServer
	log    *slog.Logger
	m      *metrics
	cancel context.CancelFunc

	mu        sync.Mutex
	cfg       Config
	announced map[netip.Prefix]Want // what GoBGP holds as local paths
	vips      map[string]*VIPStatus // by VIP name, for the API
	stopped   bool
}

// Start runs a speaker and opens its sessions. The caller must Stop it.
func Start(cfg Config, log *slog.Logger) (*Speaker, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// GoBGP logs every FSM step at info; the speaker logs session changes
	// itself, so GoBGP gets warnings and errors only.
	lvl := &slog.LevelVar{}
	lvl.Set(slog.LevelWarn)
	s := &Speaker{
		srv:       server.NewBgpServer(server.LoggerOption(log.With("lib", "gobgp"), lvl)),
		log:       log,
		m:         newMetrics(),
		cfg:       Config{},
		announced: map[netip.Prefix]Want{},
		vips:      map[string]*VIPStatus{},
	}
	cfg.Peers = slices.Clone(cfg.Peers)
	s.cfg = cfg
	go s.srv.Serve()
	ctx := context.Background()
	g := &api.Global{
		Asn:             cfg.ASN,
		RouterId:        cfg.RouterID.String(),
		ListenPort:      cfg.ListenPort,
		ListenAddresses: cfg.ListenAddresses,
	}
	if err := s.srv.StartBgp(ctx, &api.StartBgpRequest{Global: g}); err != nil {
		s.srv.Stop()
		return nil, fmt.Errorf("bgp: start: %w", err)
	}
	// Portcullis announces and never learns: routes from peers are
	// refused at import so the RIB stays empty whatever the routers send
	// (a full table would otherwise cost hundreds of MB). GoBGP's import
	// policy also sees locally originated paths, so those are let in by
	// route type and everything else falls to the default reject.
	const policy = "portcullis-announce-only"
	if err := s.srv.AddPolicy(ctx, &api.AddPolicyRequest{Policy: &api.Policy{Name: policy, Statements: []*api.Statement{{
		Name:       "local-paths",
		Conditions: &api.Conditions{RouteType: api.Conditions_ROUTE_TYPE_LOCAL},
		Actions:    &api.Actions{RouteAction: api.RouteAction_ROUTE_ACTION_ACCEPT},
	}}}}); err != nil {
		s.srv.Stop()
		return nil, fmt.Errorf("bgp: import policy: %w", err)
	}
	if err := s.srv.SetPolicyAssignment(ctx, &api.SetPolicyAssignmentRequest{Assignment: &api.PolicyAssignment{
		Name:          "global",
		Direction:     api.PolicyDirection_POLICY_DIRECTION_IMPORT,
		Policies:      []*api.Policy{{Name: policy}},
		DefaultAction: api.RouteAction_ROUTE_ACTION_REJECT,
	}}); err != nil {
		s.srv.Stop()
		return nil, fmt.Errorf("bgp: import policy: %w", err)
	}
	wctx, cancel := context.WithCancel(ctx)
	s.cancel = cancel
	if err := s.srv.WatchEvent(wctx, server.WatchEventMessageCallbacks{OnPeerUpdate: s.onPeer}, server.WatchPeer()); err != nil {
		cancel()
		s.srv.Stop()
		return nil, fmt.Errorf("bgp: watch: %w", err)
	}
	for _, p := range cfg.Peers {
		if err := s.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: peerAPI(cfg, p)}); err != nil {
			s.Stop(ctx)
			return nil, fmt.Errorf("bgp: peer %s: %w", p.Address, err)
		}
	}
	log.Info("BGP speaker started", "asn", cfg.ASN, "router_id", cfg.RouterID, "peers", len(cfg.Peers), "listen_port", cfg.ListenPort)
	return s, nil
}

func (s *Speaker) onPeer(ev *apiutil.WatchEventMessage_PeerEvent, _ time.Time) {
	if ev.Type != apiutil.PEER_EVENT_STATE {
		return
	}
	st := ev.Peer.State
	state := fsmName(st.SessionState)
	addr := st.NeighborAddress.String()
	s.m.peerState(addr, state)
	attrs := []any{"peer", addr, "asn", st.PeerASN, "state", state}
	if state != "established" && st.DisconnectReason != api.PeerState_DISCONNECT_REASON_UNSPECIFIED {
		attrs = append(attrs, "reason", disconnectName(st.DisconnectReason))
		if st.DisconnectMessage != "" {
			attrs = append(attrs, "message", st.DisconnectMessage)
		}
	}
	s.log.Info("BGP session", attrs...)
}

// Update applies a reloaded config: peers added, removed or changed (a
// changed peer's session restarts), next hops (re-announced). Global
// settings return ErrRestartRequired.
func (s *Speaker) Update(cfg Config) error {
	cfg.Peers = slices.Clone(cfg.Peers) // the caller's slice is not ours to keep
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.cfg
	var restart error
	if old.ASN != cfg.ASN || old.RouterID != cfg.RouterID || old.ListenPort != cfg.ListenPort ||
		!slices.Equal(old.ListenAddresses, cfg.ListenAddresses) || old.GracefulRestart != cfg.GracefulRestart {
		restart = ErrRestartRequired
		// Keep the running globals: peers are built from them.
		cfg.ASN, cfg.RouterID, cfg.ListenPort, cfg.ListenAddresses, cfg.GracefulRestart =
			old.ASN, old.RouterID, old.ListenPort, old.ListenAddresses, old.GracefulRestart
	}
	ctx := context.Background()
	was := map[netip.Addr]Peer{}
	for _, p := range old.Peers {
		was[p.Address] = p
	}
	now := map[netip.Addr]bool{}
	var errs []error
	for _, p := range cfg.Peers {
		now[p.Address] = true
		o, ok := was[p.Address]
		if ok && peerEqual(o, p) {
			continue
		}
		if ok {
			if err := s.srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: p.Address.String()}); err != nil {
				errs = append(errs, fmt.Errorf("bgp: peer %s: %w", p.Address, err))
			}
		}
		if err := s.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: peerAPI(cfg, p)}); err != nil {
			errs = append(errs, fmt.Errorf("bgp: peer %s: %w", p.Address, err))
		}
		s.log.Info("BGP peer configured", "peer", p.Address, "asn", p.ASN, "changed", ok)
	}
	for a := range was {
		if !now[a] {
			if err := s.srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: a.String()}); err != nil {
				errs = append(errs, fmt.Errorf("bgp: peer %s: %w", a, err))
			}
			s.m.forget(a.String())
			s.log.Info("BGP peer removed", "peer", a)
		}
	}
	s.cfg = cfg
	if old.NextHop4 != cfg.NextHop4 || old.NextHop6 != cfg.NextHop6 {
		// Re-adding a local path replaces it with the new next hop.
		for p, w := range s.announced {
			if err := s.add(w); err != nil {
				errs = append(errs, err)
				delete(s.announced, p)
			}
		}
	}
	return errors.Join(append(errs, restart)...)
}

func peerEqual(a, b Peer) bool {
	if (a.BFD == nil) != (b.BFD == nil) || a.BFD != nil && *a.BFD != *b.BFD {
		return false
	}
	a.BFD, b.BFD = nil, nil
	return a == b
}

// Apply makes the announced set match wants: prefixes of Wants that say
// Announce are added, all others withdrawn. A VIP missing from wants is
// withdrawn and forgotten (it left the config).
func (s *Speaker) Apply(wants []Want) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil
	}
	var errs []error
	keep := map[netip.Prefix]bool{}
	names := map[string]bool{}
	for _, w := range wants {
		names[w.Name] = true
		if w.Announce {
			keep[w.Prefix] = true
			if cur, ok := s.announced[w.Prefix]; !ok || !slices.Equal(cur.Communities, w.Communities) {
				if err := s.add(w); err != nil {
					errs = append(errs, err)
					w.Announce, w.Reason = false, Reason("error")
				} else {
					s.announced[w.Prefix] = w
				}
			}
		}
		s.record(w)
	}
	for p, w := range s.announced {
		if !keep[p] {
			if err := s.withdraw(w); err != nil {
				errs = append(errs, err)
				continue
			}
			delete(s.announced, p)
		}
	}
	for name, st := range s.vips {
		if !names[name] {
			if st.Announced {
				s.m.withdrawn(name, ReasonUnconfigured)
			}
			s.m.forgetVIP(name)
			delete(s.vips, name)
		}
	}
	return errors.Join(errs...)
}

// record keeps the VIP's status for the API and counts withdrawals.
func (s *Speaker) record(w Want) {
	st, ok := s.vips[w.Name]
	if ok && st.Announced == w.Announce && st.Reason == w.Reason && st.Prefix == w.Prefix.String() {
		return
	}
	if !ok {
		st = &VIPStatus{VIP: w.Name}
		s.vips[w.Name] = st
	}
	if ok && st.Announced && !w.Announce {
		s.m.withdrawn(w.Name, w.Reason)
		s.log.Warn("BGP: VIP withdrawn", "vip", w.Name, "prefix", w.Prefix, "reason", w.Reason)
	} else if w.Announce && !st.Announced {
		s.log.Info("BGP: VIP announced", "vip", w.Name, "prefix", w.Prefix)
	} else if !ok {
		s.log.Info("BGP: VIP not announced", "vip", w.Name, "prefix", w.Prefix, "reason", w.Reason)
	}
	st.Prefix, st.Announced, st.Reason, st.Since = w.Prefix.String(), w.Announce, w.Reason, time.Now()
	s.m.announced(w.Name, w.Announce)
}

func (s *Speaker) add(w Want) error {
	if _, err := s.srv.AddPath(apiutil.AddPathRequest{Paths: []*apiutil.Path{s.path(w)}}); err != nil {
		return fmt.Errorf("bgp: announce %s: %w", w.Prefix, err)
	}
	return nil
}

func (s *Speaker) withdraw(w Want) error {
	if err := s.srv.DeletePath(apiutil.DeletePathRequest{Paths: []*apiutil.Path{s.path(w)}}); err != nil {
		return fmt.Errorf("bgp: withdraw %s: %w", w.Prefix, err)
	}
	return nil
}

// path builds the local path of a VIP. An unspecified next hop is
// replaced by GoBGP with each session's local address.
func (s *Speaker) path(w Want) *apiutil.Path {
	nlri, _ := bgppkt.NewIPAddrPrefix(w.Prefix)
	attrs := []bgppkt.PathAttributeInterface{bgppkt.NewPathAttributeOrigin(bgppkt.BGP_ORIGIN_ATTR_TYPE_IGP)}
	family := bgppkt.RF_IPv4_UC
	if w.Prefix.Addr().Is4() {
		nh := s.cfg.NextHop4
		if !nh.IsValid() {
			nh = netip.IPv4Unspecified()
		}
		a, _ := bgppkt.NewPathAttributeNextHop(nh)
		attrs = append(attrs, a)
	} else {
		family = bgppkt.RF_IPv6_UC
		nh := s.cfg.NextHop6
		if !nh.IsValid() {
			nh = netip.IPv6Unspecified()
		}
		a, _ := bgppkt.NewPathAttributeMpReachNLRI(family, []bgppkt.PathNLRI{{NLRI: nlri}}, nh)
		attrs = append(attrs, a)
	}
	if len(w.Communities) > 0 {
		attrs = append(attrs, bgppkt.NewPathAttributeCommunities(w.Communities))
	}
	return &apiutil.Path{Family: family, Nlri: nlri, Attrs: attrs}
}

// WithdrawAll withdraws every VIP (drain, SIGTERM) and keeps the sessions
// up, so the routers move the traffic away while this node still serves.
func (s *Speaker) WithdrawAll(reason Reason) error {
	s.mu.Lock()
	var wants []Want
	for _, st := range s.vips {
		p, _ := netip.ParsePrefix(st.Prefix)
		wants = append(wants, Want{Name: st.VIP, Prefix: p, Reason: reason})
	}
	s.mu.Unlock()
	return s.Apply(wants)
}

// Stop withdraws everything and closes the sessions with a Cease
// NOTIFICATION, so the routers drop this node's routes at once (and do not
// keep them as graceful-restart stale routes).
func (s *Speaker) Stop(ctx context.Context) {
	_ = s.WithdrawAll(ReasonDraining)
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		// StopBgp sends the NOTIFICATIONs and waits for the sessions.
		s.srv.Stop()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		s.log.Warn("BGP speaker did not stop in time")
	}
	if s.cancel != nil {
		s.cancel()
	}
}

// VIPs is the announce state of every VIP, sorted by name.
func (s *Speaker) VIPs() []VIPStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]VIPStatus, 0, len(s.vips))
	for _, st := range s.vips {
		out = append(out, *st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].VIP < out[j].VIP })
	return out
}

// Peers is the state of every session, sorted by address.
func (s *Speaker) Peers() []PeerStatus {
	var out []PeerStatus
	_ = s.srv.ListPeer(context.Background(), &api.ListPeerRequest{}, func(p *api.Peer) {
		st := p.GetState()
		ps := PeerStatus{Address: st.GetNeighborAddress(), ASN: st.GetPeerAsn(), State: sessionName(st.GetSessionState()),
			RouterID: st.GetRouterId(), Flaps: st.GetFlops()}
		if ps.Address == "" {
			ps.Address = p.GetConf().GetNeighborAddress()
		}
		if ts := p.GetTimers().GetState(); ts != nil {
			ps.HoldTime = ts.GetNegotiatedHoldTime()
			if st.GetSessionState() == api.PeerState_SESSION_STATE_ESTABLISHED && ts.GetUptime() != nil {
				ps.Since = ts.GetUptime().AsTime()
			} else if ts.GetDowntime() != nil && ts.GetDowntime().AsTime().Unix() > 0 {
				ps.Since = ts.GetDowntime().AsTime()
			}
		}
		if b := st.GetBfdState(); b != nil && p.GetBfd().GetEnabled() {
			ps.BFD = bfdName(b.GetSessionState())
		}
		if r := st.GetDisconnectReason(); r != api.PeerState_DISCONNECT_REASON_UNSPECIFIED {
			ps.DisconnectReason = disconnectName(r)
		}
		out = append(out, ps)
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Address < out[j].Address })
	return out
}

func peerAPI(cfg Config, p Peer) *api.Peer {
	families := []*api.AfiSafi{
		{Config: &api.AfiSafiConfig{Family: &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}, Enabled: true}},
		{Config: &api.AfiSafiConfig{Family: &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}, Enabled: true}},
	}
	ap := &api.Peer{
		Conf: &api.PeerConf{NeighborAddress: p.Address.String(), PeerAsn: p.ASN, AuthPassword: p.Password,
			Description: "portcullis"},
		Timers: &api.Timers{Config: &api.TimersConfig{
			HoldTime:          uint64(p.HoldTime / time.Second),
			KeepaliveInterval: uint64(p.Keepalive / time.Second),
			ConnectRetry:      uint64(max(p.ConnectRetry/time.Second, 1)),
			// Withdrawals and announcements go out at once: the
			// default 30s (eBGP) would delay a withdrawal on drain.
			MinimumAdvertisementInterval: 0,
			// After a session drops, retry after connect_retry rather
			// than GoBGP's 30s: a router that restarted gets this
			// node's VIPs back as soon as it listens again.
			IdleHoldTimeAfterReset: uint64(max(p.ConnectRetry/time.Second, 1)),
		}},
		Transport: &api.Transport{PassiveMode: p.Passive, RemotePort: uint32(p.Port)},
		AfiSafis:  families,
	}
	if p.MultihopTTL > 0 {
		ap.EbgpMultihop = &api.EbgpMultihop{Enabled: true, MultihopTtl: uint32(p.MultihopTTL)}
	}
	if cfg.GracefulRestart > 0 {
		ap.GracefulRestart = &api.GracefulRestart{Enabled: true, RestartTime: uint32(cfg.GracefulRestart / time.Second)}
		for _, f := range families {
			f.MpGracefulRestart = &api.MpGracefulRestart{Config: &api.MpGracefulRestartConfig{Enabled: true}}
		}
	}
	if b := p.BFD; b != nil {
		ap.Bfd = &api.BfdPeerConfig{Enabled: true,
			DesiredMinimumTxInterval: uint32(b.MinTx / time.Microsecond),
			RequiredMinimumReceive:   uint32(b.MinRx / time.Microsecond),
			DetectionMultiplier:      b.Multiplier}
	}
	return ap
}

// sessionStates are the FSM states by the API's numbering (RFC 4271
// order from 1); GoBGP's own FSMState is the same order from 0.
var sessionStates = [...]string{"unknown", "idle", "connect", "active", "opensent", "openconfirm", "established"}

func sessionName(s api.PeerState_SessionState) string {
	if int(s) < len(sessionStates) {
		return sessionStates[s]
	}
	return "unknown"
}

func fsmName(s bgppkt.FSMState) string { return sessionName(api.PeerState_SessionState(s + 1)) }

func bfdName(s api.BfdSessionState) string {
	switch s {
	case api.BfdSessionState_BFD_SESSION_STATE_UP:
		return "up"
	case api.BfdSessionState_BFD_SESSION_STATE_DOWN:
		return "down"
	case api.BfdSessionState_BFD_SESSION_STATE_ADMIN_DOWN:
		return "admin_down"
	case api.BfdSessionState_BFD_SESSION_STATE_INIT:
		return "init"
	}
	return "unknown"
}

func disconnectName(r api.PeerState_DisconnectReason) string {
	switch r {
	case api.PeerState_DISCONNECT_REASON_ADMIN_DOWN:
		return "admin_down"
	case api.PeerState_DISCONNECT_REASON_HOLD_TIMER_EXPIRED:
		return "hold_timer_expired"
	case api.PeerState_DISCONNECT_REASON_NOTIFICATION_SENT:
		return "notification_sent"
	case api.PeerState_DISCONNECT_REASON_NOTIFICATION_RECEIVED:
		return "notification_received"
	case api.PeerState_DISCONNECT_REASON_READ_FAILED:
		return "read_failed"
	case api.PeerState_DISCONNECT_REASON_WRITE_FAILED:
		return "write_failed"
	case api.PeerState_DISCONNECT_REASON_IDLE_TIMER_EXPIRED:
		return "idle_timer_expired"
	case api.PeerState_DISCONNECT_REASON_RESTART_TIMER_EXPIRED:
		return "restart_timer_expired"
	case api.PeerState_DISCONNECT_REASON_GRACEFUL_RESTART:
		return "graceful_restart"
	case api.PeerState_DISCONNECT_REASON_INVALID_MSG:
		return "invalid_message"
	case api.PeerState_DISCONNECT_REASON_HARD_RESET:
		return "hard_reset"
	case api.PeerState_DISCONNECT_REASON_DECONFIGURED:
		return "deconfigured"
	}
	return "unspecified"
}
