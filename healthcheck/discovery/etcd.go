package discovery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Etcd watches every key under Prefix; each value is one endpoint as JSON,
// {"address": "10.0.0.5:8080", "weight": 2}. A value that does not parse is
// skipped (and logged), it does not fail the whole set.
//
// A watch on a dead cluster just waits (the client reconnects quietly), so
// a probe reads the prefix's key count every Retry: when that fails the
// source turns stale, and when it works again the set is read afresh.
type Etcd struct {
	Endpoints []string
	Prefix    string
	Weight    int // for values without a weight
	Retry     time.Duration
	Log       *slog.Logger
}

// Run implements Provider.
func (e *Etcd) Run(ctx context.Context, s Sink) {
	log := e.Log
	if log == nil {
		log = slog.Default()
	}
	eps := make([]string, len(e.Endpoints))
	for i, ep := range e.Endpoints {
		if !strings.Contains(ep, "://") {
			ep = "http://" + ep
		}
		eps[i] = ep
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   eps,
		DialTimeout: e.Retry,
		Logger:      zap.NewNop(),
		// Keepalives make a dead member show up as a broken watch stream.
		DialKeepAliveTime:    e.Retry,
		DialKeepAliveTimeout: e.Retry,
	})
	if err != nil {
		// Only a malformed config fails here; the dial itself is lazy.
		s.Fail(err)
		<-ctx.Done()
		return
	}
	defer cli.Close()
	for ctx.Err() == nil {
		err := e.session(ctx, cli, s, log)
		if ctx.Err() != nil {
			return
		}
		s.Fail(err)
		if !sleep(ctx, e.Retry) {
			return
		}
	}
}

// session reads the prefix, then follows it with a watch from the next
// revision until the watch or the liveness probe fails.
func (e *Etcd) session(ctx context.Context, cli *clientv3.Client, s Sink, log *slog.Logger) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	gctx, gcancel := context.WithTimeout(ctx, e.Retry)
	resp, err := cli.Get(gctx, e.Prefix, clientv3.WithPrefix())
	gcancel()
	if err != nil {
		return fmt.Errorf("etcd get %q: %w", e.Prefix, err)
	}
	set := map[string]Endpoint{}
	for _, kv := range resp.Kvs {
		if ep, ok := e.parse(string(kv.Key), kv.Value, log); ok {
			set[string(kv.Key)] = ep
		}
	}
	s.Set(values(set))
	probeErr := make(chan error, 1)
	go func() {
		for sleep(ctx, e.Retry) {
			pctx, pcancel := context.WithTimeout(ctx, e.Retry)
			_, err := cli.Get(pctx, e.Prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
			pcancel()
			if err != nil && ctx.Err() == nil {
				probeErr <- fmt.Errorf("etcd unreachable: %w", err)
				return
			}
		}
	}()
	wch := cli.Watch(clientv3.WithRequireLeader(ctx), e.Prefix, clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1))
	for {
		select {
		case err := <-probeErr:
			return err
		case wr, ok := <-wch:
			if !ok {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return errors.New("etcd watch closed")
			}
			if err := wr.Err(); err != nil {
				// Compaction past our revision, a lost leader: start over.
				return fmt.Errorf("etcd watch: %w", err)
			}
			for _, ev := range wr.Events {
				k := string(ev.Kv.Key)
				delete(set, k)
				if ev.Type == clientv3.EventTypePut {
					if ep, ok := e.parse(k, ev.Kv.Value, log); ok {
						set[k] = ep
					}
				}
			}
			if len(wr.Events) > 0 {
				s.Set(values(set))
			}
		}
	}
}

func (e *Etcd) parse(key string, v []byte, log *slog.Logger) (Endpoint, bool) {
	var ep Endpoint
	if err := json.Unmarshal(v, &ep); err != nil {
		log.Warn("etcd value is not an endpoint", "key", key, "err", err)
		return ep, false
	}
	if _, _, err := net.SplitHostPort(ep.Address); err != nil || ep.Weight < 0 || ep.Weight > 65535 {
		log.Warn("etcd value is not an endpoint", "key", key, "address", ep.Address, "weight", ep.Weight)
		return ep, false
	}
	if ep.Weight == 0 {
		ep.Weight = max(e.Weight, 1)
	}
	return ep, true
}

func values(m map[string]Endpoint) []Endpoint {
	out := make([]Endpoint, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}
