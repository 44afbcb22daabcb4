package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/miekg/dns"
)

// DNS looks a name up again whenever the shortest TTL of its answer
// expires (bounded by MinRefresh and MaxRefresh). An empty answer, NXDOMAIN
// or an unreachable server is a failure: the pool keeps its last set.
type DNS struct {
	Name string
	// Type is "srv", "a", "aaaa" or "a+aaaa".
	Type string
	// Port is the endpoints' port for A/AAAA answers.
	Port int
	// Servers are host:port asked in order; empty means /etc/resolv.conf.
	Servers []string
	// Weight is given to A/AAAA endpoints (SRV records carry their own).
	Weight                 int
	MinRefresh, MaxRefresh time.Duration
	// Retry is the wait after a failure before asking again.
	Retry   time.Duration
	Timeout time.Duration // per query; default 2s
	Log     *slog.Logger
}

// Run implements Provider.
func (d *DNS) Run(ctx context.Context, s Sink) {
	servers := d.Servers
	for {
		if len(servers) == 0 {
			cc, err := dns.ClientConfigFromFile("/etc/resolv.conf")
			if err != nil {
				s.Fail(fmt.Errorf("no resolvers configured and /etc/resolv.conf unreadable: %w", err))
				if !sleep(ctx, d.Retry) {
					return
				}
				continue
			}
			for _, h := range cc.Servers {
				servers = append(servers, net.JoinHostPort(h, cc.Port))
			}
		}
		eps, ttl, err := d.lookup(ctx, servers)
		if ctx.Err() != nil {
			return
		}
		wait := d.Retry
		if err != nil {
			s.Fail(err)
		} else {
			s.Set(eps)
			wait = min(max(ttl, d.MinRefresh), d.MaxRefresh)
		}
		if !sleep(ctx, wait) {
			return
		}
	}
}

func (d *DNS) query(ctx context.Context, servers []string, name string, qtype uint16) ([]dns.RR, []dns.RR, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired = true
	c := &dns.Client{Timeout: d.Timeout}
	if c.Timeout == 0 {
		c.Timeout = 2 * time.Second
	}
	var errs []error
	for _, srv := range servers {
		r, _, err := c.ExchangeContext(ctx, m, srv)
		if err == nil && r.Truncated {
			tc := *c
			tc.Net = "tcp"
			r, _, err = tc.ExchangeContext(ctx, m, srv)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", srv, err))
			continue
		}
		switch r.Rcode {
		case dns.RcodeSuccess:
			return r.Answer, r.Extra, nil
		case dns.RcodeNameError:
			// Authoritative: another server would say the same.
			return nil, nil, fmt.Errorf("%s %s: NXDOMAIN from %s", name, dns.TypeToString[qtype], srv)
		default:
			errs = append(errs, fmt.Errorf("%s: %s", srv, dns.RcodeToString[r.Rcode]))
		}
	}
	return nil, nil, fmt.Errorf("%s %s: %w", name, dns.TypeToString[qtype], errors.Join(errs...))
}

// addrs resolves name to addresses of the wanted families, with the
// smallest TTL seen.
func (d *DNS) addrs(ctx context.Context, servers []string, name string, v4, v6 bool) ([]string, uint32, error) {
	var out []string
	ttl := uint32(1<<32 - 1)
	var types []uint16
	if v4 {
		types = append(types, dns.TypeA)
	}
	if v6 {
		types = append(types, dns.TypeAAAA)
	}
	var errs []error
	for _, qt := range types {
		ans, _, err := d.query(ctx, servers, name, qt)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out, ttl = appendAddrs(out, ttl, ans)
	}
	if len(out) == 0 {
		if len(errs) > 0 {
			return nil, 0, errors.Join(errs...)
		}
		return nil, 0, fmt.Errorf("%s: no address records", name)
	}
	return out, ttl, nil
}

func appendAddrs(out []string, ttl uint32, rrs []dns.RR) ([]string, uint32) {
	for _, rr := range rrs {
		switch r := rr.(type) {
		case *dns.A:
			out = append(out, r.A.String())
			ttl = min(ttl, r.Hdr.Ttl)
		case *dns.AAAA:
			out = append(out, r.AAAA.String())
			ttl = min(ttl, r.Hdr.Ttl)
		}
	}
	return out, ttl
}

func (d *DNS) lookup(ctx context.Context, servers []string) ([]Endpoint, time.Duration, error) {
	weight := max(d.Weight, 1)
	if d.Type != "srv" {
		ips, ttl, err := d.addrs(ctx, servers, d.Name, d.Type != "aaaa", d.Type != "a")
		if err != nil {
			return nil, 0, err
		}
		eps := make([]Endpoint, 0, len(ips))
		for _, ip := range ips {
			eps = append(eps, Endpoint{Address: net.JoinHostPort(ip, strconv.Itoa(d.Port)), Weight: weight})
		}
		return eps, time.Duration(ttl) * time.Second, nil
	}
	ans, extra, err := d.query(ctx, servers, d.Name, dns.TypeSRV)
	if err != nil {
		return nil, 0, err
	}
	ttl := uint32(1<<32 - 1)
	var srvs []*dns.SRV
	best := -1
	for _, rr := range ans {
		if r, ok := rr.(*dns.SRV); ok && r.Target != "." {
			srvs = append(srvs, r)
			ttl = min(ttl, r.Hdr.Ttl)
			if best < 0 || int(r.Priority) < best {
				best = int(r.Priority)
			}
		}
	}
	if len(srvs) == 0 {
		return nil, 0, fmt.Errorf("%s SRV: no records", d.Name)
	}
	// RFC 2782: clients use the lowest priority they can reach; the others
	// are backups. Health checks decide reachability, so the pool is the
	// lowest priority group, weighted by the records' weights.
	var eps []Endpoint
	for _, r := range srvs {
		if int(r.Priority) != best {
			continue
		}
		// The server usually sends the targets' addresses along (RFC 2782
		// "additional data"); look them up only when it did not.
		var ips []string
		tt := ttl
		for _, rr := range extra {
			if dns.CanonicalName(rr.Header().Name) == dns.CanonicalName(r.Target) {
				ips, tt = appendAddrs(ips, tt, []dns.RR{rr})
			}
		}
		if len(ips) == 0 {
			ips, tt, err = d.addrs(ctx, servers, r.Target, true, true)
			if err != nil {
				return nil, 0, err
			}
		}
		ttl = min(ttl, tt)
		// Weight 0 means "very rarely" (RFC 2782); 1 is the closest a
		// weighted pool can do without starving it.
		w := max(int(r.Weight), 1)
		for _, ip := range ips {
			eps = append(eps, Endpoint{Address: net.JoinHostPort(ip, strconv.Itoa(int(r.Port))), Weight: w})
		}
	}
	return eps, time.Duration(ttl) * time.Second, nil
}
