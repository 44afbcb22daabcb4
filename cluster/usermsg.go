package cluster

import (
	"fmt"
	"sync"
)

// User messages: the seam through which other subsystems exchange their
// own state over the cluster's gossip transport, encrypted and
// authenticated with the cluster key like everything memberlist sends. A
// message is one UDP datagram to each alive peer (memberlist's
// SendBestEffort): no connection, no retransmission, no relaying. That
// suits state that is sent again, or superseded, every few hundred
// milliseconds, and whose loss costs a bounded error (the cluster-wide rate
// limits' counts). State that every node must eventually hold belongs in
// votes' broadcast queue and push/pull instead.

// MsgType is a user message's first byte: it selects the handler.
type MsgType byte

// User message types. Every type is listed here, so two subsystems cannot
// pick the same byte; msgVote ('v') is the cluster's own.
const (
	// MsgRateLimit carries tokens taken by cluster-scoped rate limits
	// (l7/ratelimit).
	MsgRateLimit MsgType = 'r'
)

// MaxUserMessage is the largest payload SendToPeers takes: with
// memberlist's framing, checksum and AES-GCM envelope (about 40 bytes) the
// datagram stays under memberlist's 1400-byte UDP budget, so it is never
// fragmented on a 1500-byte MTU path.
const MaxUserMessage = 1200

// userHandlers is the handler registry; the zero value is ready.
type userHandlers struct {
	mu sync.RWMutex
	h  map[MsgType]func(payload []byte)
}

func (u *userHandlers) get(t MsgType) func([]byte) {
	u.mu.RLock()
	defer u.mu.RUnlock()
	return u.h[t]
}

// Handle registers h for messages of type t from peers (nil removes it).
// h runs on memberlist's packet goroutine: it must return quickly, and
// must not keep payload, which memberlist reuses. A node of another
// version that sends a type without a handler here is ignored.
func (n *Node) Handle(t MsgType, h func(payload []byte)) {
	if byte(t) == msgVote {
		panic(fmt.Sprintf("cluster: user message type %q is reserved", byte(t)))
	}
	u := &n.user
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.h == nil {
		u.h = map[MsgType]func([]byte){}
	}
	if h == nil {
		delete(u.h, t)
		return
	}
	u.h[t] = h
}

// SendToPeers sends payload, as a message of type t, to every alive peer,
// best effort, and returns how many it was sent to. A payload larger than
// MaxUserMessage is refused (0). It does not keep payload.
func (n *Node) SendToPeers(t MsgType, payload []byte) int {
	if len(payload) > MaxUserMessage {
		return 0
	}
	n.mu.Lock()
	stopped := n.stopped || n.leaving
	n.mu.Unlock()
	if stopped {
		return 0
	}
	msg := make([]byte, 0, 1+len(payload))
	msg = append(msg, byte(t))
	msg = append(msg, payload...)
	sent := 0
	// Members takes memberlist's node lock: never called with n.mu held
	// (memberlist calls the event delegate, which takes n.mu, under it).
	for _, m := range n.ml.Members() {
		if m.Name == n.opts.Name {
			continue
		}
		if err := n.ml.SendBestEffort(m, msg); err != nil {
			n.log.Debug("user message not sent", "type", string(rune(t)), "member", m.Name, "err", err)
			continue
		}
		sent++
	}
	return sent
}
