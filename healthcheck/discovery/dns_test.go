package discovery

import (
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// zone is a DNS server on 127.0.0.1:0 whose records a test changes.
type zone struct {
	mu      sync.Mutex
	records map[uint16][]dns.RR
	queries atomic.Int32
	srv     *dns.Server
	addr    string
}

func newZone(t *testing.T) *zone {
	z := &zone{records: map[uint16][]dns.RR{}}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	z.addr = pc.LocalAddr().String()
	z.srv = &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		z.queries.Add(1)
		m := new(dns.Msg)
		m.SetReply(q)
		z.mu.Lock()
		for _, rr := range z.records[q.Question[0].Qtype] {
			if dns.CanonicalName(rr.Header().Name) == dns.CanonicalName(q.Question[0].Name) {
				m.Answer = append(m.Answer, rr)
			}
		}
		if q.Question[0].Qtype == dns.TypeSRV {
			m.Extra = append(m.Extra, z.records[dns.TypeA]...)
		}
		z.mu.Unlock()
		w.WriteMsg(m)
	})}
	started := make(chan struct{})
	z.srv.NotifyStartedFunc = func() { close(started) }
	go z.srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { z.srv.Shutdown() })
	return z
}

func (z *zone) set(rrs ...string) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.records = map[uint16][]dns.RR{}
	for _, s := range rrs {
		rr, err := dns.NewRR(s)
		if err != nil {
			panic(err)
		}
		z.records[rr.Header().Rrtype] = append(z.records[rr.Header().Rrtype], rr)
	}
}

func TestDNSARecordsRefreshWhenTheirTTLExpires(t *testing.T) {
	z := newZone(t)
	z.set("web.test. 1 IN A 10.0.0.1", "web.test. 1 IN A 10.0.0.2")
	r := &recorder{}
	p := &DNS{Name: "web.test", Type: "a", Port: 8080, Servers: []string{z.addr}, Weight: 2,
		MinRefresh: 100 * time.Millisecond, MaxRefresh: time.Minute, Retry: 100 * time.Millisecond}
	w := NewWatcher("d", "dns", "web", p, 10*time.Millisecond, r.apply)
	w.Start()
	defer w.Stop()
	waitFor(t, "the first set", func() bool { return r.n() == 1 })
	if want := []Endpoint{{"10.0.0.1:8080", 2}, {"10.0.0.2:8080", 2}}; !slices.Equal(r.last(), want) {
		t.Fatalf("got %v", r.last())
	}
	// A TTL of 1s: the change is seen after about a second, not before
	// min_refresh and not after max_refresh.
	before := z.queries.Load()
	z.set("web.test. 1 IN A 10.0.0.3")
	waitFor(t, "the refresh after the TTL", func() bool { return len(r.last()) == 1 })
	if n := z.queries.Load() - before; n > 3 {
		t.Errorf("%d queries for one TTL of 1s: the TTL is not honoured", n)
	}
	// The server fails: the last set stays and the source is stale.
	z.srv.Shutdown()
	waitFor(t, "stale", func() bool { return w.Status().State == StateStale })
	if eps, _ := w.Endpoints(); len(eps) != 1 || eps[0].Address != "10.0.0.3:8080" {
		t.Errorf("set after the outage %v", eps)
	}
}

func TestDNSSRVUsesTheLowestPriorityAndItsWeights(t *testing.T) {
	z := newZone(t)
	z.set(
		"_http._tcp.web.test. 30 IN SRV 10 5 8080 a.web.test.",
		"_http._tcp.web.test. 30 IN SRV 10 1 8081 b.web.test.",
		"_http._tcp.web.test. 30 IN SRV 20 1 9000 backup.web.test.",
		"a.web.test. 30 IN A 10.0.0.1",
		"b.web.test. 30 IN A 10.0.0.2",
		"backup.web.test. 30 IN A 10.0.0.9",
	)
	r := &recorder{}
	p := &DNS{Name: "_http._tcp.web.test", Type: "srv", Servers: []string{z.addr}, MinRefresh: time.Second, MaxRefresh: time.Minute, Retry: time.Second}
	w := NewWatcher("d", "dns", "web", p, 10*time.Millisecond, r.apply)
	w.Start()
	defer w.Stop()
	waitFor(t, "the SRV set", func() bool { return r.n() == 1 })
	if want := []Endpoint{{"10.0.0.1:8080", 5}, {"10.0.0.2:8081", 1}}; !slices.Equal(r.last(), want) {
		t.Errorf("got %v, want %v", r.last(), want)
	}
}

func TestAnEmptyDNSAnswerKeepsTheLastSet(t *testing.T) {
	z := newZone(t)
	z.set("web.test. 1 IN A 10.0.0.1")
	r := &recorder{}
	p := &DNS{Name: "web.test", Type: "a+aaaa", Port: 80, Servers: []string{z.addr}, MinRefresh: 50 * time.Millisecond, MaxRefresh: time.Minute, Retry: 50 * time.Millisecond}
	w := NewWatcher("d", "dns", "web", p, 10*time.Millisecond, r.apply)
	w.Start()
	defer w.Stop()
	waitFor(t, "the first set", func() bool { return r.n() == 1 })
	z.set()
	waitFor(t, "stale", func() bool { return w.Status().State == StateStale })
	if r.n() != 1 {
		t.Errorf("an empty answer was applied: %v", r.last())
	}
}
