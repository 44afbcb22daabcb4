package l4

import (
	"errors"
	"fmt"
	"math/bits"
	"net/netip"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"

	"github.com/portcullis-lb/portcullis/bpf"
	"github.com/portcullis-lb/portcullis/l4/internal/bpfconv"
	"github.com/portcullis-lb/portcullis/l4/maglev"
)

// state mirrors what Apply last wrote to the maps, so the next Apply
// writes only differences (health flaps touch one record and maybe one
// table, not everything).
type state struct {
	vips     map[bpf.LBVipKey]*vipState
	freeVIPs idQueue
	freeBEs  idQueue
	filter   []uint64
	index    map[uint32]uint32 // vip_index entries as written (non-zero)
}

type vipState struct {
	svc  Service
	key  bpf.LBVipKey
	meta bpf.LBVipMeta
	// Two Maglev buffers; active indexes the one installed in
	// maglev_tables (-1: none yet). The next table is written into the
	// other one and then installed, so the buffer rewritten next is
	// always the one packets are no longer given.
	tables [2]*ebpf.Map
	active int
	sig    string // Maglev input of the installed table
	// slots counts the installed table's slots per backend name, for
	// Stats: the admin API and dashboard read the table the maps hold
	// instead of computing another one.
	slots    map[string]int
	tableLen int
	backends map[string]*beState
	quic     map[uint8]uint32 // node id -> backend id, as written
	// published: the vips entry exists. The first Apply of a service
	// writes it last, once its table is in place.
	published bool
}

type beState struct {
	id  uint32
	rec bpf.LBBackend
	be  Backend
}

// idQueue hands out ids first-freed-first-reused, so a just-freed id (that
// stale conntrack entries may still name) is the last to come back.
type idQueue struct{ ids []uint32 }

func (q *idQueue) pop() uint32 {
	id := q.ids[0]
	q.ids = q.ids[1:]
	return id
}

func (q *idQueue) push(id uint32) { q.ids = append(q.ids, id) }

func newState(maxVIPs, maxBEs uint32) state {
	s := state{vips: map[bpf.LBVipKey]*vipState{}, index: map[uint32]uint32{}}
	// 0 means "none" in the BPF maps, so ids start at 1.
	for i := uint32(1); i < maxVIPs; i++ {
		s.freeVIPs.push(i)
	}
	for i := uint32(1); i < maxBEs; i++ {
		s.freeBEs.push(i)
	}
	return s
}

// Apply makes the maps match svcs, the full desired set: services not in
// it are removed, backends not listed are removed from their service.
// Calling it again with the same input writes nothing.
//
// Invalid input (see ErrInvalid) changes nothing. An error from the
// kernel mid-way may leave part of the change applied; every step is
// ordered so packets never see an inconsistent state, and calling Apply
// again converges.
//
// Order, per service: backend records that a new table will name, QUIC
// node ids, the Maglev table (spare buffer, then one pointer swap), the
// VIP entry, then records of backends going down or away. So a packet
// never meets a table naming a backend record that is not there yet, and
// a backend is marked down only once no table hands it new flows.
func (d *Dataplane) Apply(svcs []Service) error {
	if err := d.validate(svcs); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()

	type plan struct {
		svc   *Service
		key   bpf.LBVipKey
		sig   string
		table *maglev.Table // nil: unchanged
	}
	plans := make([]plan, 0, len(svcs))
	want := make(map[bpf.LBVipKey]bool, len(svcs))
	newVIPs, newBEs := 0, 0
	for i := range svcs {
		s := &svcs[i]
		p := plan{svc: s, key: vipKey(s.Addr, s.Port, s.Proto), sig: maglevSig(s)}
		want[p.key] = true
		old := d.st.vips[p.key]
		if old == nil {
			newVIPs++
			newBEs += len(s.Backends)
		} else {
			for _, b := range s.Backends {
				if old.backends[b.Name] == nil {
					newBEs++
				}
			}
		}
		if old == nil || old.sig != p.sig {
			t, err := MaglevTable(s, d.cfg.MaglevSize, d.cfg.HashSeed)
			if err != nil {
				return fmt.Errorf("l4: service %q: maglev: %w", s.Name, err)
			}
			p.table = t
		}
		plans = append(plans, p)
	}
	freedVIPs, freedBEs := 0, 0
	for k, v := range d.st.vips {
		if !want[k] {
			freedVIPs++
			freedBEs += len(v.backends)
		}
	}
	if newVIPs > len(d.st.freeVIPs.ids)+freedVIPs {
		return fmt.Errorf("%w: more than %d services", ErrInvalid, d.maxVIPs-1)
	}
	if newBEs > len(d.st.freeBEs.ids)+freedBEs {
		return fmt.Errorf("%w: more than %d backends in all (removed ones are freed after the update)", ErrInvalid, d.maxBEs-1)
	}

	// Whole services first: it frees their ids for the new ones, and no
	// surviving service depends on them.
	for k, v := range d.st.vips {
		if !want[k] {
			if err := d.removeVIP(v); err != nil {
				return err
			}
		}
	}
	for _, p := range plans {
		if err := d.upsertVIP(p.svc, p.key, p.sig, p.table); err != nil {
			return fmt.Errorf("l4: service %q: %w", p.svc.Name, err)
		}
	}
	return d.writeFilter()
}

func (d *Dataplane) upsertVIP(s *Service, key bpf.LBVipKey, sig string, table *maglev.Table) error {
	v := d.st.vips[key]
	if v == nil {
		num := d.st.freeVIPs.pop()
		v = &vipState{key: key, active: -1, backends: map[string]*beState{}, quic: map[uint8]uint32{}}
		v.meta.VipNum = num
		for i := range v.tables {
			spec := d.inner.Copy()
			spec.Name = fmt.Sprintf("maglev_%d_%d", num, i)
			m, err := ebpf.NewMap(spec)
			if err != nil {
				d.st.freeVIPs.push(num)
				for _, t := range v.tables {
					if t != nil {
						t.Close()
					}
				}
				return fmt.Errorf("create maglev buffer: %w", err)
			}
			v.tables[i] = m
		}
		d.st.vips[key] = v
		if err := d.put(d.objs.VipStats, num, make([]bpf.LBVipCounters, d.ncpu)); err != nil {
			return err
		}
	}
	num := v.meta.VipNum
	v.svc = cloneService(s)

	ids := make([]uint32, len(s.Backends))
	listed := make(map[string]bool, len(s.Backends))
	var goingDown []*beState
	for i, b := range s.Backends {
		listed[b.Name] = true
		rec := backendRecord(&b, num, d.cfg.GUEPort)
		bs := v.backends[b.Name]
		switch {
		case bs == nil:
			bs = &beState{id: d.st.freeBEs.pop(), rec: rec}
			v.backends[b.Name] = bs
			if err := d.put(d.objs.BackendStats, bs.id, make([]bpf.LBBackendCounters, d.ncpu)); err != nil {
				return err
			}
			if err := d.put(d.objs.Backends, bs.id, rec); err != nil {
				return err
			}
		case rec != bs.rec && rec.Flags&beFlagDown != 0 && bs.rec.Flags&beFlagDown == 0:
			bs.rec = rec
			goingDown = append(goingDown, bs)
		case rec != bs.rec:
			bs.rec = rec
			if err := d.put(d.objs.Backends, bs.id, rec); err != nil {
				return err
			}
		}
		bs.be = b
		ids[i] = bs.id
	}

	quic := map[uint8]uint32{}
	if s.QUIC {
		for i, b := range s.Backends {
			if b.QUICNodeID != 0 {
				quic[b.QUICNodeID] = ids[i]
			}
		}
	}
	for node, id := range quic {
		if v.quic[node] != id {
			if err := d.put(d.objs.QuicNodes, num*quicNodeSlot+uint32(node), id); err != nil {
				return err
			}
		}
	}
	for node := range v.quic {
		if _, ok := quic[node]; !ok {
			if err := d.put(d.objs.QuicNodes, num*quicNodeSlot+uint32(node), uint32(0)); err != nil {
				return err
			}
		}
	}
	v.quic = quic

	if table != nil {
		counts := make(map[string]int, len(s.Backends))
		for i, slot := range table.Slots {
			if slot < 0 {
				d.slots[i] = 0
			} else {
				d.slots[i] = ids[slot]
				counts[s.Backends[slot].Name]++
			}
		}
		if err := d.flip(v); err != nil {
			return err
		}
		v.sig, v.slots, v.tableLen = sig, counts, len(table.Slots)
	}

	meta := bpf.LBVipMeta{VipNum: num}
	if s.QUIC {
		meta.Flags |= vipFlagQUIC
	}
	if meta != v.meta || !v.published {
		if err := d.put(d.objs.Vips, key, meta); err != nil {
			return err
		}
		if err := d.put(d.objs.VipInfos, num, bpf.LBVipInfo{Key: key, Flags: meta.Flags}); err != nil {
			return err
		}
		v.meta = meta
		v.published = true
	}

	for _, bs := range goingDown {
		if err := d.put(d.objs.Backends, bs.id, bs.rec); err != nil {
			return err
		}
	}
	for name, bs := range v.backends {
		if !listed[name] {
			if err := d.freeBackend(bs); err != nil {
				return err
			}
			delete(v.backends, name)
		}
	}
	return nil
}

// flip writes d.slots into the VIP's spare buffer and installs it.
func (d *Dataplane) flip(v *vipState) error {
	spare := 0
	if v.active == 0 {
		spare = 1
	}
	chunks := make([][maglevChunk]uint16, (len(d.slots)+maglevChunk-1)/maglevChunk)
	for i, id := range d.slots {
		chunks[i/maglevChunk][i%maglevChunk] = uint16(id)
	}
	keys := make([]uint32, len(chunks))
	for i := range keys {
		keys[i] = uint32(i)
	}
	d.writes++
	if _, err := v.tables[spare].BatchUpdate(keys, chunks, nil); err != nil {
		if !errors.Is(err, ebpf.ErrNotSupported) {
			return fmt.Errorf("write maglev buffer: %w", err)
		}
		for i := range chunks {
			if err := v.tables[spare].Put(uint32(i), chunks[i]); err != nil {
				return fmt.Errorf("write maglev buffer: %w", err)
			}
		}
	}
	// One pointer exchange in the kernel: readers get the old table or
	// the new one, never a mix.
	if err := d.put(d.objs.MaglevTables, v.meta.VipNum, v.tables[spare]); err != nil {
		return fmt.Errorf("install maglev buffer: %w", err)
	}
	v.active = spare
	return nil
}

func (d *Dataplane) removeVIP(v *vipState) error {
	num := v.meta.VipNum
	// First make vip_index hits on this number fail their key compare;
	// writeFilter clears the index itself at the end of Apply.
	if err := d.put(d.objs.VipInfos, num, bpf.LBVipInfo{}); err != nil {
		return err
	}
	if err := d.del(d.objs.Vips, v.key); err != nil {
		return fmt.Errorf("l4: remove service %q: %w", v.svc.Name, err)
	}
	if err := d.del(d.objs.MaglevTables, num); err != nil {
		return fmt.Errorf("l4: remove service %q: %w", v.svc.Name, err)
	}
	for node := range v.quic {
		if err := d.put(d.objs.QuicNodes, num*quicNodeSlot+uint32(node), uint32(0)); err != nil {
			return err
		}
	}
	for _, bs := range v.backends {
		if err := d.freeBackend(bs); err != nil {
			return err
		}
	}
	for _, t := range v.tables {
		// The kernel keeps a table alive while a packet still uses it.
		t.Close()
	}
	delete(d.st.vips, v.key)
	d.st.freeVIPs.push(num)
	d.log.Info("l4 service removed", "service", v.svc.Name, "vip_num", num)
	return nil
}

// freeBackend leaves a record that matches no VIP (vip_num 0) and is
// down, so conntrack entries still naming the id re-pick.
func (d *Dataplane) freeBackend(bs *beState) error {
	if err := d.put(d.objs.Backends, bs.id, bpf.LBBackend{Flags: beFlagDown}); err != nil {
		return err
	}
	d.st.freeBEs.push(bs.id)
	return nil
}

// writeFilter brings vip_filter and vip_index in line with the VIPs.
func (d *Dataplane) writeFilter() error {
	words := make([]uint64, d.filterN/64)
	index := map[uint32]uint32{}
	for k, v := range d.st.vips {
		i := filterIndex(k, d.filterN)
		words[i/64] |= 1 << (i % 64)
		if _, ok := index[i]; ok {
			index[i] = vipIndexCollide
		} else {
			index[i] = v.meta.VipNum
		}
	}
	for i, num := range index {
		if d.st.index[i] != num {
			if err := d.put(d.objs.VipIndex, i, num); err != nil {
				return err
			}
			d.st.index[i] = num
		}
	}
	for i := range d.st.index {
		if _, ok := index[i]; !ok {
			if err := d.put(d.objs.VipIndex, i, uint32(0)); err != nil {
				return err
			}
			delete(d.st.index, i)
		}
	}
	if d.st.filter == nil {
		d.st.filter = make([]uint64, len(words))
	}
	for i, w := range words {
		if w != d.st.filter[i] {
			if err := d.put(d.objs.VipFilter, uint32(i), w); err != nil {
				return err
			}
			d.st.filter[i] = w
		}
	}
	return nil
}

func (d *Dataplane) put(m *ebpf.Map, k, v any) error {
	d.writes++
	if err := m.Put(k, v); err != nil {
		return fmt.Errorf("update %s: %w", mapName(m), err)
	}
	return nil
}

func (d *Dataplane) del(m *ebpf.Map, k any) error {
	d.writes++
	if err := m.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("delete from %s: %w", mapName(m), err)
	}
	return nil
}

func mapName(m *ebpf.Map) string {
	if info, err := m.Info(); err == nil {
		return info.Name
	}
	return m.String()
}

// filterIndex is the prefilter bit of a VIP, computed as xdp_lb.c does
// from the last address word and the port as loaded from the packet.
func filterIndex(k bpf.LBVipKey, n uint32) uint32 {
	d3 := k.Addr[3]
	return (d3 ^ d3>>16 ^ uint32(k.Port)) & (n - 1)
}

func vipKey(a netip.Addr, port uint16, proto uint8) bpf.LBVipKey {
	// The port sits in network order in memory; the struct marshals
	// little-endian.
	return bpf.LBVipKey{Addr: bpfconv.AddrWords(a), Port: bits.ReverseBytes16(port), Proto: proto}
}

func backendRecord(b *Backend, num uint32, guePort uint16) bpf.LBBackend {
	rec := bpf.LBBackend{VipNum: num, Addr: bpfconv.AddrWords(b.Addr)}
	switch b.Mode {
	case ModeLocal:
		rec.Mode = beModeLocal
	case ModeDSRL2:
		rec.Mode = beModeDSRL2
	case ModeIPIP:
		rec.Mode = beModeIPIP
	case ModeGUE:
		rec.Mode = beModeGUE
		rec.EncapPort = guePort
	}
	if b.Down {
		rec.Flags |= beFlagDown
	}
	if b.Addr.IsValid() && !b.Addr.Unmap().Is4() {
		rec.Flags |= beFlagV6
	}
	copy(rec.Mac[:], b.MAC)
	return rec
}

// MaglevTable is the table Apply installs for s, computed the same way on
// every node: Slots[flowhash.Hash(seed, ...) % size] indexes s.Backends
// (-1: no backend). size 0 means maglev.DefaultSize. Tools (maglev
// explain) use it to show what the fast path does.
func MaglevTable(s *Service, size, seed uint32) (*maglev.Table, error) {
	if size == 0 {
		size = maglev.DefaultSize
	}
	return maglev.New(maglevInput(s), uint64(size), uint64(seed))
}

// maglevInput is the ordered backend list Maglev sees: a down backend
// weighs nothing, so it gets no slots, exactly like a drained one; the
// difference between the two lives in the backend record.
func maglevInput(s *Service) []maglev.Backend {
	in := make([]maglev.Backend, len(s.Backends))
	for i, b := range s.Backends {
		w := b.Weight
		if b.Down {
			w = 0
		}
		in[i] = maglev.Backend{ID: b.Name, Weight: w}
	}
	return in
}

func maglevSig(s *Service) string {
	var sb strings.Builder
	for _, b := range maglevInput(s) {
		sb.WriteString(strconv.Quote(b.ID))
		sb.WriteByte('=')
		sb.WriteString(strconv.FormatUint(uint64(b.Weight), 10))
		sb.WriteByte(';')
	}
	return sb.String()
}

func cloneService(s *Service) Service {
	c := *s
	c.Backends = make([]Backend, len(s.Backends))
	for i, b := range s.Backends {
		b.MAC = append([]byte(nil), b.MAC...)
		c.Backends[i] = b
	}
	return c
}

func (d *Dataplane) validate(svcs []Service) error {
	names := map[string]bool{}
	keys := map[bpf.LBVipKey]string{}
	total := 0
	for i := range svcs {
		s := &svcs[i]
		bad := func(format string, args ...any) error {
			return fmt.Errorf("%w: service %q: %s", ErrInvalid, s.Name, fmt.Sprintf(format, args...))
		}
		if s.Name == "" {
			return fmt.Errorf("%w: service %d has no name", ErrInvalid, i)
		}
		if names[s.Name] {
			return bad("duplicate name")
		}
		names[s.Name] = true
		if !s.Addr.IsValid() || s.Addr.Zone() != "" {
			return bad("address %v is not a plain IP address", s.Addr)
		}
		if s.Port == 0 {
			return bad("port 0")
		}
		if s.Proto != 6 && s.Proto != 17 {
			return bad("protocol %d: want 6 (tcp) or 17 (udp)", s.Proto)
		}
		if s.QUIC && s.Proto != 17 {
			return bad("quic needs protocol 17 (udp)")
		}
		k := vipKey(s.Addr, s.Port, s.Proto)
		if other, ok := keys[k]; ok {
			return bad("same address, port and protocol as service %q", other)
		}
		keys[k] = s.Name
		beNames := map[string]bool{}
		nodes := map[uint8]string{}
		for _, b := range s.Backends {
			if b.Name == "" {
				return bad("backend with no name")
			}
			if beNames[b.Name] {
				return bad("duplicate backend %q", b.Name)
			}
			beNames[b.Name] = true
			switch b.Mode {
			case ModeLocal:
			case ModeDSRL2:
				if len(b.MAC) != 6 {
					return bad("backend %q: dsr-l2 needs a 6-byte MAC, got %q", b.Name, b.MAC)
				}
			case ModeIPIP, ModeGUE:
				if len(b.MAC) != 6 {
					return bad("backend %q: ipip needs the next hop's 6-byte MAC (the router's, or the backend's on the same segment), got %q", b.Name, b.MAC)
				}
				if !b.Addr.IsValid() || b.Addr.Zone() != "" {
					return bad("backend %q: ipip needs the backend's address", b.Name)
				}
				v4 := s.Addr.Unmap().Is4()
				if b.Addr.Unmap().Is4() != v4 {
					return bad("backend %q: ipip backend %v and VIP %v are of different families (4in6/6in4 are not supported)", b.Name, b.Addr, s.Addr)
				}
				if v4 && !d.cfg.EncapSource4.IsValid() || !v4 && !d.cfg.EncapSource6.IsValid() {
					return bad("backend %q: ipip needs an outer source address: configure the encap source prefix or give the interface an address of that family", b.Name)
				}
			default:
				return bad("backend %q: mode %q: want %q, %q, %q or %q", b.Name, b.Mode, ModeLocal, ModeDSRL2, ModeIPIP, ModeGUE)
			}
			if b.QUICNodeID != 0 && s.QUIC {
				if other, ok := nodes[b.QUICNodeID]; ok {
					return bad("backends %q and %q share QUIC node id %d", other, b.Name, b.QUICNodeID)
				}
				nodes[b.QUICNodeID] = b.Name
			}
		}
		total += len(s.Backends)
	}
	if len(svcs) > int(d.maxVIPs-1) {
		return fmt.Errorf("%w: %d services, at most %d", ErrInvalid, len(svcs), d.maxVIPs-1)
	}
	if total > int(d.maxBEs-1) {
		return fmt.Errorf("%w: %d backends in all, at most %d", ErrInvalid, total, d.maxBEs-1)
	}
	return nil
}
