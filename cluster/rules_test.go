package cluster

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestAgreedDownRule(t *testing.T) {
	U, D, N := VoteUp, VoteDown, VoteNone
	for _, tc := range []struct {
		name  string
		votes []Vote
		down  bool
	}{
		{"nobody has a view: up", []Vote{N, N}, false},
		{"no voters at all: up", nil, false},
		{"a pair, both down: down", []Vote{D, D}, true},
		{"a pair, one down one up: up", []Vote{D, U}, false},
		{"a pair, the peer has no view: the owner decides down", []Vote{D, N}, true},
		{"a pair, the peer has no view: the owner decides up", []Vote{U, N}, false},
		{"alone (the peer is dead): its own view", []Vote{D}, true},
		{"three nodes, two down: down", []Vote{D, D, U}, true},
		{"three nodes, one down: up", []Vote{D, U, U}, false},
		{"three nodes, one without a view, split: up", []Vote{D, U, N}, false},
		{"four nodes, two against two: up", []Vote{D, D, U, U}, false},
	} {
		if got := agreedDown(tc.votes); got != tc.down {
			t.Errorf("%s: agreedDown(%v) = %v", tc.name, tc.votes, got)
		}
	}
}

func TestVoteStoreKeepsTheNewestVoteAndForgetsARestartedOrigin(t *testing.T) {
	s := newVoteStore()
	if !s.merge(wireVote{Origin: "b", Key: "web/be1", V: VoteDown, Epoch: 10, Seq: 2}) {
		t.Fatal("first vote not taken")
	}
	if s.merge(wireVote{Origin: "b", Key: "web/be1", V: VoteUp, Epoch: 10, Seq: 1}) {
		t.Fatal("an older vote replaced a newer one")
	}
	s.merge(wireVote{Origin: "b", Key: "web/be2", V: VoteDown, Epoch: 10, Seq: 3})
	if !s.merge(wireVote{Origin: "b", Key: "web/be1", V: VoteUp, Epoch: 11, Seq: 1}) {
		t.Fatal("a restarted origin's vote was refused")
	}
	if s.get("b", "web/be2") != VoteNone {
		t.Fatal("a restarted origin's old votes still count")
	}
	if s.merge(wireVote{Origin: "b", Key: "web/be2", V: VoteDown, Epoch: 10, Seq: 9}) {
		t.Fatal("a vote of the origin's previous run was taken")
	}
	if w := s.local("a", "web/be1", VoteNone); w != nil {
		t.Fatal("withdrawing a vote never cast made a message")
	}
	if w := s.local("a", "web/be1", VoteDown); w == nil || w.Seq != 1 {
		t.Fatalf("local vote: %+v", w)
	}
	if w := s.local("a", "web/be1", VoteDown); w != nil {
		t.Fatal("an unchanged vote made a message")
	}
}

func TestMetaRoundTripsAndFits(t *testing.T) {
	names := make([]string, maxMetaVIPs)
	for i := range names {
		b, _ := json.Marshal(i)
		names[i] = "vip-with-a-long-name-" + string(b)
	}
	m := meta{Priority: 200, XDP: true, Witness: true, Digest: digestPrefix("00112233445566778899"), Serves: sortedHashes(names), Holds: sortedHashes(names)}
	b := m.encode()
	if len(b) > metaMax {
		t.Fatalf("%d VIPs encode to %d bytes, more than memberlist's %d", maxMetaVIPs, len(b), metaMax)
	}
	got, err := decodeMeta(b)
	if err != nil || !reflect.DeepEqual(got, m) {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	for i := range b {
		if _, err := decodeMeta(b[:i]); err == nil && i < len(b) {
			t.Fatalf("a truncated metadata (%d of %d bytes) decoded", i, len(b))
		}
	}
}

func TestElection(t *testing.T) {
	h := vipHash("web")
	node := func(name string, prio int, alive, healthy, holds bool) candidate {
		c := candidate{Name: name, Alive: alive, Meta: meta{Priority: prio, XDP: true, L7: true, Witness: healthy, Serves: []uint32{h}}}
		if holds {
			c.Meta.Holds = []uint32{h}
		}
		return c
	}
	for _, tc := range []struct {
		name    string
		preempt bool
		cands   []candidate
		owner   string
	}{
		{"nobody holds it: the highest priority", false, []candidate{node("a", 200, true, true, false), node("b", 100, true, true, false)}, "a"},
		{"equal priority: the smaller name", false, []candidate{node("b", 100, true, true, false), node("a", 100, true, true, false)}, "a"},
		{"non-preemptive: the holder keeps it", false, []candidate{node("a", 200, true, true, false), node("b", 100, true, true, true)}, "b"},
		{"preempt: the highest priority takes it", true, []candidate{node("a", 200, true, true, false), node("b", 100, true, true, true)}, "a"},
		{"two holders: the election decides", false, []candidate{node("a", 200, true, true, true), node("b", 100, true, true, true)}, "a"},
		{"a dead holder is no owner", false, []candidate{node("a", 200, false, true, true), node("b", 100, true, true, false)}, "b"},
		{"an unhealthy holder is no owner", false, []candidate{node("a", 200, true, false, true), node("b", 100, true, true, false)}, "b"},
		{"nobody healthy: nobody", false, []candidate{node("a", 200, true, false, true), node("b", 100, true, false, false)}, ""},
		{"a node that does not serve the VIP is not eligible", false, []candidate{{Name: "a", Alive: true, Meta: meta{Priority: 255, XDP: true, L7: true, Witness: true}}, node("b", 1, true, true, false)}, "b"},
	} {
		if d := elect(h, tc.preempt, tc.cands); d.Owner != tc.owner {
			t.Errorf("%s: owner %q (%s), want %q", tc.name, d.Owner, d.Reason, tc.owner)
		}
	}
}
