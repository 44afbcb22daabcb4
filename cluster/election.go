package cluster

import (
	"fmt"
	"strings"
)

// candidate is one member as the election sees it.
type candidate struct {
	Name  string
	Alive bool // memberlist alive or suspect (not dead, not left)
	Meta  meta
}

// decision is an election's outcome for one VIP.
type decision struct {
	Owner  string // "" = nobody can own it
	Reason string // for the log line of a transition
}

// better orders candidates: higher priority, then the smaller name, so that
// every node breaks ties the same way.
func better(a, b *candidate) bool {
	if a.Meta.Priority != b.Meta.Priority {
		return a.Meta.Priority > b.Meta.Priority
	}
	return a.Name < b.Name
}

// elect is the ownership rule, a pure function of one node's view:
//
//  1. eligible = alive members, healthy (XDP, L7, witness, not leaving),
//     that advertise the VIP as one they can serve;
//  2. holders = eligible members that advertise holding it;
//  3. non-preemptive VIP with holders: the best holder keeps it (one holder
//     is the normal case; two happen after a healed partition or a race,
//     and every node picks the same one, so the other releases);
//  4. otherwise the best eligible member.
//
// A member that is dead or unhealthy is never an owner, even if its last
// metadata says it holds the VIP.
func elect(h uint32, preempt bool, cands []candidate) decision {
	var best, bestHolder *candidate
	var holders []string
	for i := range cands {
		c := &cands[i]
		if !c.Alive || !c.Meta.healthy() || !hasHash(c.Meta.Serves, h) {
			continue
		}
		if best == nil || better(c, best) {
			best = c
		}
		if hasHash(c.Meta.Holds, h) {
			holders = append(holders, c.Name)
			if bestHolder == nil || better(c, bestHolder) {
				bestHolder = c
			}
		}
	}
	switch {
	case best == nil:
		return decision{Reason: "no alive, healthy node can serve it"}
	case !preempt && bestHolder != nil && len(holders) == 1:
		return decision{Owner: bestHolder.Name, Reason: fmt.Sprintf("%s holds it and is healthy (non-preemptive)", bestHolder.Name)}
	case !preempt && bestHolder != nil:
		return decision{Owner: bestHolder.Name, Reason: fmt.Sprintf("held by %s at once: %s wins by priority %d (then name)", strings.Join(holders, " and "), bestHolder.Name, bestHolder.Meta.Priority)}
	case preempt:
		return decision{Owner: best.Name, Reason: fmt.Sprintf("preempt: %s has the highest priority (%d) of the eligible nodes", best.Name, best.Meta.Priority)}
	default:
		return decision{Owner: best.Name, Reason: fmt.Sprintf("no healthy node holds it: %s has the highest priority (%d) of the eligible nodes", best.Name, best.Meta.Priority)}
	}
}
