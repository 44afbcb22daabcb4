package bgp

import "testing"

func TestDecide(t *testing.T) {
	ready := Readiness{NeedsXDP: true, XDP: true, Witness: true, UsableBackends: 3}
	with := func(f func(*Readiness)) Readiness { r := ready; f(&r); return r }
	for _, tc := range []struct {
		name string
		r    Readiness
		want bool
		why  Reason
	}{
		{"L4 VIP, everything up", ready, true, ReasonServing},
		{"one usable backend is enough", with(func(r *Readiness) { r.UsableBackends = 1 }), true, ReasonServing},
		{"draining withdraws first", with(func(r *Readiness) { r.Draining = true }), false, ReasonDraining},
		{"draining beats every other reason", Readiness{Draining: true, NeedsXDP: true}, false, ReasonDraining},
		{"XDP detached", with(func(r *Readiness) { r.XDP = false }), false, ReasonNoXDP},
		{"XDP detached beats no backend", with(func(r *Readiness) { r.XDP = false; r.UsableBackends = 0 }), false, ReasonNoXDP},
		{"no usable backend", with(func(r *Readiness) { r.UsableBackends = 0 }), false, ReasonNoBackend},
		{"witness lost", with(func(r *Readiness) { r.Witness = false }), false, ReasonWitness},
		{"HTTP VIP: L7 down", with(func(r *Readiness) { r.NeedsL7 = true }), false, ReasonL7Down},
		{"HTTP VIP: L7 up", with(func(r *Readiness) { r.NeedsL7, r.L7 = true, true }), true, ReasonServing},
		{"L7-only address: up", Readiness{NeedsL7: true, L7: true, Witness: true}, true, ReasonServing},
		{"L7-only address: backends are not its business", Readiness{NeedsL7: true, L7: true, Witness: true, UsableBackends: 0}, true, ReasonServing},
		{"L7-only address: listener down", Readiness{NeedsL7: true, Witness: true}, false, ReasonL7Down},
		{"XDP not needed, not attached", Readiness{NeedsL7: true, L7: true, Witness: true, XDP: false}, true, ReasonServing},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, why := Decide(tc.r)
			if got != tc.want || why != tc.why {
				t.Errorf("Decide(%+v) = %v, %s; want %v, %s", tc.r, got, why, tc.want, tc.why)
			}
		})
	}
}
