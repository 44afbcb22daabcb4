package cluster

import (
	"encoding/json"
	"time"

	"github.com/hashicorp/memberlist"
)

// Vote is one node's local opinion of one backend.
type Vote uint8

// Votes.
const (
	VoteNone Vote = iota // no view: this node does not check the backend (or withdrew)
	VoteUp
	VoteDown
)

func (v Vote) String() string {
	switch v {
	case VoteUp:
		return "up"
	case VoteDown:
		return "down"
	}
	return "none"
}

// agreedDown is the rule that turns votes into the one health set every
// node feeds to Maglev: a backend is down only when a strict majority of
// the voters say so. Voters are the alive members whose witness is
// reachable and that have a view of the backend (VoteNone does not count).
//
//	2 nodes, both have a view:   down only when both say down
//	2 nodes, one has a view:     that node decides (e.g. the peer is dead,
//	                             or does not check this backend)
//	3 nodes:                     2 of 3 (2 of 2 if one has no view)
//	nobody has a view:           up (there is nothing to agree on)
//
// Why up-biased: Maglev tables must be identical on every node so that a
// failover keeps established flows on their backend; a backend that only
// one node sees down (a problem on that node's path, not the backend's)
// would otherwise make the tables differ, and the owner's table would
// drop a backend that works. The cost: in a pair, a backend that really
// fails but is still seen up by the peer keeps its table slots until the
// peer agrees (its health checks catch up within a fall interval), and
// the conntrack table keeps existing flows pinned either way. Witness-less
// nodes (partitioned from the clients' side) are excluded because their
// view of the network is the one least to be trusted.
func agreedDown(votes []Vote) bool {
	up, down := 0, 0
	for _, v := range votes {
		switch v {
		case VoteUp:
			up++
		case VoteDown:
			down++
		}
	}
	return 2*down > up+down
}

// voteRec is the latest vote of one origin for one backend.
type voteRec struct {
	V     Vote
	Epoch uint64 // origin's process start (ns): a restarted origin supersedes all its old votes
	Seq   uint64 // origin's counter within the epoch
}

// wireVote is the gossip form of a vote (JSON: compact enough for the
// few hundred backends of an appliance, and debuggable).
type wireVote struct {
	Origin string `json:"o"`
	Key    string `json:"k"` // vip + "/" + backend
	V      Vote   `json:"v"`
	Epoch  uint64 `json:"e"`
	Seq    uint64 `json:"s"`
}

// voteStore holds every origin's votes. It is guarded by Node.mu.
type voteStore struct {
	epoch  uint64 // ours
	seq    uint64
	epochs map[string]uint64             // origin → newest epoch seen
	votes  map[string]map[string]voteRec // origin → key → vote
}

func newVoteStore() voteStore {
	return voteStore{epoch: uint64(time.Now().UnixNano()), epochs: map[string]uint64{}, votes: map[string]map[string]voteRec{}}
}

func voteKey(vip, backend string) string { return vip + "/" + backend }

// local records our own vote; it returns the wire form to broadcast, or
// nil when nothing changed.
func (s *voteStore) local(self, key string, v Vote) *wireVote {
	if cur, ok := s.votes[self][key]; ok && cur.V == v || !ok && v == VoteNone {
		return nil
	}
	s.seq++
	w := wireVote{Origin: self, Key: key, V: v, Epoch: s.epoch, Seq: s.seq}
	s.merge(w)
	return &w
}

// merge applies a vote if it is newer than what is known; it reports
// whether it changed anything (and so should be passed on).
func (s *voteStore) merge(w wireVote) bool {
	known := s.epochs[w.Origin]
	if w.Epoch < known {
		return false
	}
	if w.Epoch > known {
		// The origin restarted: its votes from before mean nothing now.
		s.epochs[w.Origin] = w.Epoch
		delete(s.votes, w.Origin)
	}
	m := s.votes[w.Origin]
	if m == nil {
		m = map[string]voteRec{}
		s.votes[w.Origin] = m
	}
	if cur, ok := m[w.Key]; ok && cur.Epoch == w.Epoch && cur.Seq >= w.Seq {
		return false
	}
	m[w.Key] = voteRec{V: w.V, Epoch: w.Epoch, Seq: w.Seq}
	return true
}

// forget drops an origin's votes (it died or left). A later vote of the
// same epoch is accepted again, since the epoch is forgotten too.
func (s *voteStore) forget(origin string) {
	delete(s.votes, origin)
	delete(s.epochs, origin)
}

// all is the full state for memberlist's push/pull (anti-entropy): every
// vote of every origin, so a node that missed broadcasts catches up.
func (s *voteStore) all() []wireVote {
	var out []wireVote
	for o, m := range s.votes {
		for k, r := range m {
			out = append(out, wireVote{Origin: o, Key: k, V: r.V, Epoch: r.Epoch, Seq: r.Seq})
		}
	}
	return out
}

func (s *voteStore) get(origin, key string) Vote { return s.votes[origin][key].V }

// voteBroadcast is one vote in memberlist's transmit queue; a newer vote of
// the same origin and key replaces a queued older one.
type voteBroadcast struct {
	name string
	msg  []byte
}

func (b *voteBroadcast) Name() string { return b.name }
func (b *voteBroadcast) Invalidates(o memberlist.Broadcast) bool {
	ob, ok := o.(*voteBroadcast)
	return ok && ob.name == b.name
}
func (b *voteBroadcast) Message() []byte { return b.msg }
func (b *voteBroadcast) Finished()       {}

// msgVote prefixes a user message that carries one vote.
const msgVote byte = 'v'

func encodeVoteMsg(w wireVote) []byte {
	b, _ := json.Marshal(w)
	return append([]byte{msgVote}, b...)
}
