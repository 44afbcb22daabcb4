package daemon

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portcullis-lb/portcullis/cluster"
	"github.com/portcullis-lb/portcullis/l7/ratelimit"
)

// rateSync connects the proxy's cluster-scoped rate limits
// (rate_limit.scope: cluster) to the cluster's user messages: every
// ratelimit.DefaultSyncInterval it sends the tokens this node's requests
// took to every peer, and takes the peers' out of this node's buckets
// (docs/security.md "Cluster-wide rate limits").
//
// It holds neither a generation nor a node: each flush and each message
// looks up the running generation's limiters and the current node, so a
// reload (new limiters, adopted buckets) or a cluster node started later
// needs no rewiring. The handler is registered on every node the daemon
// starts (registerRateSync).
type rateSync struct {
	sync ratelimit.Sync
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

func (d *Daemon) newRateSync() *rateSync {
	r := &rateSync{stop: make(chan struct{}), done: make(chan struct{})}
	r.sync = ratelimit.Sync{
		Limiters:   d.clusterLimiters,
		MaxMessage: cluster.MaxUserMessage,
		Send: func(msg []byte) int {
			if n := d.clusterNode(); n != nil {
				return n.SendToPeers(cluster.MsgRateLimit, msg)
			}
			return 0
		},
	}
	counter := func(name, help string, labels prometheus.Labels, read func(ratelimit.SyncCounts) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels},
			func() float64 { return float64(read(r.sync.Counts())) })
	}
	const msgs = "portcullis_ratelimit_cluster_sync_messages_total"
	const msgsHelp = "Messages of cluster-scoped rate limits' counts: sent (one per peer) and received."
	const keys = "portcullis_ratelimit_cluster_sync_keys_total"
	const keysHelp = "Keys whose counts were sent to the peers (once per sync, whatever the number of peers) or received from them."
	d.metrics.Registry.MustRegister(
		counter(msgs, msgsHelp, prometheus.Labels{"direction": "sent"}, func(c ratelimit.SyncCounts) uint64 { return c.Sent }),
		counter(msgs, msgsHelp, prometheus.Labels{"direction": "received"}, func(c ratelimit.SyncCounts) uint64 { return c.Received }),
		counter(keys, keysHelp, prometheus.Labels{"direction": "sent"}, func(c ratelimit.SyncCounts) uint64 { return c.KeysSent }),
		counter(keys, keysHelp, prometheus.Labels{"direction": "received"}, func(c ratelimit.SyncCounts) uint64 { return c.KeysReceived }),
		counter("portcullis_ratelimit_cluster_sync_ignored_total",
			"Received messages not applied: malformed, or for a route this node does not run with the same limit (the nodes' configs differ).",
			nil, func(c ratelimit.SyncCounts) uint64 { return c.Ignored }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "portcullis_ratelimit_cluster_keys",
			Help: "Buckets held by the cluster-scoped rate limits of the running config.",
		}, func() float64 {
			n := 0
			for _, l := range d.clusterLimiters() {
				n += l.Len()
			}
			return float64(n)
		}),
	)
	return r
}

// clusterLimiters is the running generation's cluster-scoped limiters.
func (d *Daemon) clusterLimiters() map[string]*ratelimit.Limiter {
	if g := d.gen.Load(); g != nil {
		return g.clusterLimiters
	}
	return nil
}

// registerRateSync makes n deliver the peers' counts to the limiters and
// starts the sync loop (once per daemon).
func (d *Daemon) registerRateSync(n *cluster.Node) {
	n.Handle(cluster.MsgRateLimit, d.rl.sync.Receive)
	d.rl.once.Do(func() {
		go func() {
			defer close(d.rl.done)
			d.rl.sync.Run(ratelimit.DefaultSyncInterval, d.rl.stop)
		}()
	})
}

// stopRateSync sends the last counts and stops the loop; before the node
// leaves, so the peers get them.
func (d *Daemon) stopRateSync() {
	d.rl.once.Do(func() { close(d.rl.done) }) // never started: nothing to wait for
	select {
	case <-d.rl.stop:
		return
	default:
		close(d.rl.stop)
	}
	<-d.rl.done
}
