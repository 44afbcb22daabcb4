//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Portcullis L4 fast path: XDP Maglev balancer with connection tracking,
 * L2 DSR and handoff to the local stack.
 *
 * The steps read top to bottom:
 *   parse L2 -> parse L3 -> parse L4 -> VIP prefilter (bitmap) -> VIP
 *   lookup (direct index, hash on collision) -> destination MAC check ->
 *   QUIC connection-ID routing -> conntrack -> Maglev -> forward.
 *
 * Rules for packets that are not simply "a VIP packet" (each counted in
 * global_stats, field named in brackets):
 *   - Anything we cannot parse completely (truncated Ethernet/VLAN/IP/L4
 *     header, bad IP version, IHL < 5, a total length shorter than the
 *     headers) is XDP_PASS'd untouched [pass_trunc_*, pass_bad_l3]. We
 *     cannot prove such a packet is ours, so we must not drop it, and the
 *     kernel's own checks drop it if it is garbage.
 *   - IP fragments (IPv4 MF or offset != 0, IPv6 fragment header) are
 *     XDP_PASS'd [pass_frag_v4, pass_frag_v6]: later fragments carry no
 *     ports, so they cannot be balanced consistently with the first one.
 *     The local stack reassembles; a VIP the local L7 proxy serves still
 *     works, a DSR-only VIP gets no fragmented traffic (as with Katran,
 *     which drops them).
 *   - IPv6 with extension headers before TCP/UDP [pass_v6_ext], and more
 *     than one VLAN tag [pass_qinq]: XDP_PASS, not parsed.
 *   - IPv4 options (IHL > 5) are skipped correctly and the packet is
 *     balanced like any other [ip_options].
 *   - Frames under 14 bytes never reach XDP (drivers drop runts, and
 *     BPF_PROG_TEST_RUN refuses them); 14..n bytes follow the rules above.
 *   - A VIP packet with no backend to send it to is XDP_DROP'd
 *     [drop_no_backend], as is one whose backend record is unusable
 *     [drop_bad_backend]: both are VIP traffic we were told to balance.
 *   - A VIP packet is ours only if its destination MAC is this
 *     interface's (local_mac, set from the interface at load time).
 *     Any other destination -- another host's unicast MAC (a switch
 *     flooding unknown unicast after a MAC aged out or after the VIP
 *     owner's link died in an HA pair, or promiscuous mode), multicast
 *     or broadcast -- is XDP_PASS'd untouched [pass_not_ours]: no VIP or
 *     backend counter moves, no conntrack entry is made, and the kernel
 *     drops PACKET_OTHERHOST frames itself. A standby therefore never
 *     forwards traffic it does not own, and a flood never duplicates
 *     traffic to the backends. The check runs only once the packet is
 *     known to be for a VIP (non-VIP packets pass anyway, at no extra
 *     cost), so a packet that passes earlier keeps its earlier reason.
 *   - Zero-length payloads (bare TCP ACKs, empty UDP) are normal packets.
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "lb_consts.h"
#include "lb_maps.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/*
 * Set by the loader before the program is loaded (l4.Config). Being
 * read-only, the verifier folds them into the program as immediates.
 */
const volatile __u32 maglev_size = MAGLEV_DEFAULT_SIZE;
const volatile __u32 hash_seed = 0;
const volatile __u64 udp_timeout_ns = UDP_DEFAULT_TIMEOUT_NS;
/*
 * A UDP hit rewrites last_seen only when it is older than this, so a busy
 * flow does not dirty its conntrack cache line on every packet.
 */
const volatile __u64 udp_refresh_ns = UDP_DEFAULT_TIMEOUT_NS / 8;
/*
 * SYN flood guard: once a CPU has seen more than this many SYNs that
 * would open a conntrack entry within one second, further SYNs in that
 * second are balanced by Maglev without an entry (see step 7).
 * 0xFFFFFFFF never trips in practice.
 */
const volatile __u32 syn_flood_rate = SYN_FLOOD_DEFAULT_RATE;
/*
 * The MAC of the interface we are attached to: the destination a VIP
 * packet must carry to be ours (step 5), and the source MAC of DSR
 * frames. Aligned so step 5 reads it as a u32 and a u16.
 */
const volatile __u8 local_mac[6] __attribute__((aligned(4))) = {};

#define V4_MAPPED_WORD bpf_htonl(0x0000FFFF)

struct vlanhdr {
	__be16 tci;
	__be16 proto;
};

static __always_inline struct global_counters *gstats(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&global_stats, &zero);
}

#define GSTAT_INC(field)                              \
	({                                            \
		struct global_counters *__g = gstats();  \
		if (__g)                              \
			__g->field++;                 \
	})

#define PASS_COUNTED(field) ({ GSTAT_INC(field); XDP_PASS; })

static __always_inline __u64 rotl64(__u64 x, int r)
{
	return (x << r) | (x >> (64 - r));
}

static __always_inline __u64 fh_round(__u64 h, __u64 w)
{
	w *= FH_C1;
	w = rotl64(w, 31);
	w *= FH_C2;
	h ^= w;
	h = rotl64(h, 27);
	return h * 5 + FH_ADD;
}

/*
 * The flow hash: a seeded 32-bit hash of the 40-byte flow key read as
 * five little-endian u64 words, murmur3-x64 rounds and finaliser, folded
 * to 32 bits. l4/flowhash.Hash is the exact Go mirror; every node and the
 * CLI compute the same Maglev slot with it. One lane, one multiply chain:
 * cheap enough for the new-flow path.
 */
static __always_inline __u32 flow_hash(const struct flow_key *k)
{
	__u64 h = hash_seed;

	h = fh_round(h, (__u64)k->src[0] | ((__u64)k->src[1] << 32));
	h = fh_round(h, (__u64)k->src[2] | ((__u64)k->src[3] << 32));
	h = fh_round(h, (__u64)k->dst[0] | ((__u64)k->dst[1] << 32));
	h = fh_round(h, (__u64)k->dst[2] | ((__u64)k->dst[3] << 32));
	h = fh_round(h, (__u64)k->ports | ((__u64)k->proto << 32));
	h ^= FH_LEN;
	h ^= h >> 33;
	h *= FH_FMIX1;
	h ^= h >> 33;
	h *= FH_FMIX2;
	h ^= h >> 33;
	return (__u32)h ^ (__u32)(h >> 32);
}

/*
 * Counts a SYN that would open an entry in this CPU's one-second window
 * and says whether the window is over its budget (a SYN flood). The
 * clock is read on every 64th SYN and when the budget is first crossed,
 * not per SYN: a window therefore starts up to 63 SYNs late and a flood
 * verdict outlives its window by at most 63 SYNs, which is noise next to
 * a budget of thousands.
 */
static __always_inline int syn_flood(struct global_counters *g)
{
	__u64 n, now;

	if (!g)
		return 0;
	n = ++g->syn_window_syns;
	if ((n & (SYN_CLOCK_EVERY - 1)) == 0 || n == (__u64)syn_flood_rate + 1) {
		now = bpf_ktime_get_coarse_ns();
		if (now - g->syn_window_start_ns >= SYN_WINDOW_NS) {
			g->syn_window_start_ns = now;
			g->syn_window_syns = n = 1;
		}
	}
	return n > syn_flood_rate;
}

/*
 * A backend id is usable for this VIP if its record belongs to the VIP
 * (ids are recycled) and it is not marked down. A drained backend
 * (weight 0) is usable: it is only absent from the Maglev table.
 */
static __always_inline struct backend *backend_usable(__u32 id, __u32 vip_num)
{
	struct backend *be = bpf_map_lookup_elem(&backends, &id);

	if (!be || be->vip_num != vip_num || (be->flags & BE_F_DOWN))
		return NULL;
	return be;
}

static __always_inline int forward(struct ethhdr *eth, struct backend *be,
				   __u32 id, __u64 len, int new_flow,
				   struct vip_counters *vs)
{
	struct backend_counters *bs = bpf_map_lookup_elem(&backend_stats, &id);

	if (bs) {
		bs->packets++;
		bs->bytes += len;
		bs->new_flows += new_flow;
	}
	if (be->mode == BE_MODE_LOCAL)
		return XDP_PASS;
	if (be->mode == BE_MODE_DSR_L2) {
		/*
		 * The backend holds the VIP on lo and answers the client
		 * directly; only the L2 next hop changes, so no checksum
		 * changes either.
		 */
		__builtin_memcpy(eth->h_dest, be->mac, ETH_ALEN);
		/*
		 * Byte by byte through the volatile: a memcpy would drop the
		 * qualifier and clang would fold the zero initialiser.
		 */
#pragma unroll
		for (int i = 0; i < ETH_ALEN; i++)
			eth->h_source[i] = local_mac[i];
		return XDP_TX;
	}
	/* Encapsulating modes are reserved but not implemented yet. */
	vs->drop_bad_backend++;
	GSTAT_INC(drop_bad_backend);
	return XDP_DROP;
}

SEC("xdp")
int xdp_lb(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u64 len = data_end - data;
	struct ethhdr *eth = data;
	struct flow_key key;
	struct vip_key vk;
	struct vip_meta *vip;
	struct vip_counters *vs;
	struct ct_entry *ct;
	struct backend *be;
	void *l3, *l4;
	__u32 l3_len, l4_min, vip_num, vip_flags, id, d3, fidx, widx, slot;
	__u16 eth_proto;
	__u8 proto, ip_opts = 0, syn = 0;
	__u64 *fw, now = 0;
	void *table;
	__u16 *chunk;
	__u32 chunk_idx;
	__u32 *idp;

	/* 1. Ethernet, with at most one 802.1Q/802.1ad tag. */
	if ((void *)(eth + 1) > data_end)
		return PASS_COUNTED(pass_trunc_l2);
	eth_proto = eth->h_proto;
	l3 = eth + 1;
	if (eth_proto == bpf_htons(ETHTYPE_VLAN) ||
	    eth_proto == bpf_htons(ETHTYPE_QINQ)) {
		struct vlanhdr *vh = l3;

		if ((void *)(vh + 1) > data_end)
			return PASS_COUNTED(pass_trunc_l2);
		eth_proto = vh->proto;
		l3 = vh + 1;
		if (eth_proto == bpf_htons(ETHTYPE_VLAN) ||
		    eth_proto == bpf_htons(ETHTYPE_QINQ))
			return PASS_COUNTED(pass_qinq);
	}

	/* 2. IPv4 or IPv6, into the flow key (IPv4 v4-mapped). */
	__builtin_memset(&key, 0, sizeof(key));
	if (eth_proto == bpf_htons(ETHTYPE_IPV4)) {
		struct iphdr *iph = l3;
		__u8 vihl;
		__u32 hlen;

		if ((void *)(iph + 1) > data_end)
			return PASS_COUNTED(pass_trunc_l3);
		vihl = *(__u8 *)iph;
		if ((vihl >> 4) != 4 || (vihl & 0xF) < 5)
			return PASS_COUNTED(pass_bad_l3);
		hlen = (__u32)(vihl & 0xF) << 2;
		if (l3 + hlen > data_end)
			return PASS_COUNTED(pass_trunc_l3);
		l3_len = bpf_ntohs(iph->tot_len);
		if (l3_len < hlen)
			return PASS_COUNTED(pass_bad_l3);
		if (iph->frag_off & bpf_htons(IPV4_MF_OFFSET_MASK))
			return PASS_COUNTED(pass_frag_v4);
		proto = iph->protocol;
		if (proto != IPPROTO_TCP_ && proto != IPPROTO_UDP_)
			return XDP_PASS;
		ip_opts = hlen > sizeof(*iph);
		l3_len -= hlen;
		l4 = l3 + hlen;
		key.src[2] = V4_MAPPED_WORD;
		key.src[3] = iph->saddr;
		key.dst[2] = V4_MAPPED_WORD;
		key.dst[3] = iph->daddr;
	} else if (eth_proto == bpf_htons(ETHTYPE_IPV6)) {
		struct ipv6hdr *ip6 = l3;

		if ((void *)(ip6 + 1) > data_end)
			return PASS_COUNTED(pass_trunc_l3);
		if ((*(__u8 *)ip6 >> 4) != 6)
			return PASS_COUNTED(pass_bad_l3);
		proto = ip6->nexthdr;
		if (proto == IPV6_NH_FRAGMENT)
			return PASS_COUNTED(pass_frag_v6);
		if (proto == IPV6_NH_HOPOPTS || proto == IPV6_NH_ROUTING ||
		    proto == IPV6_NH_DSTOPTS)
			return PASS_COUNTED(pass_v6_ext);
		if (proto != IPPROTO_TCP_ && proto != IPPROTO_UDP_)
			return XDP_PASS;
		l3_len = bpf_ntohs(ip6->payload_len);
		l4 = ip6 + 1;
		__builtin_memcpy(key.src, &ip6->saddr, 16);
		__builtin_memcpy(key.dst, &ip6->daddr, 16);
	} else {
		return XDP_PASS;
	}

	/* 3. TCP or UDP: the ports, and whether this opens a connection. */
	l4_min = proto == IPPROTO_TCP_ ? sizeof(struct tcphdr) : sizeof(struct udphdr);
	if (l3_len < l4_min)
		return PASS_COUNTED(pass_trunc_l4);
	if (proto == IPPROTO_TCP_) {
		struct tcphdr *th = l4;
		__u8 flags;

		if ((void *)(th + 1) > data_end)
			return PASS_COUNTED(pass_trunc_l4);
		flags = ((__u8 *)th)[13];
		syn = (flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN;
	} else {
		if (l4 + sizeof(struct udphdr) > data_end)
			return PASS_COUNTED(pass_trunc_l4);
	}
	key.ports = *(__u32 *)l4;
	key.proto = proto;

	/*
	 * 4. VIP prefilter: one bit per fold of (last address word, port).
	 * A clear bit proves "not a VIP" with one load from an 8 KiB bitmap
	 * that stays in cache: non-VIP traffic pays almost nothing.
	 */
	d3 = key.dst[3];
	fidx = (d3 ^ (d3 >> 16) ^ (key.ports >> 16)) & (VIP_FILTER_BITS - 1);
	widx = fidx >> 6;
	fw = bpf_map_lookup_elem(&vip_filter, &widx);
	if (!fw || !(*fw & (1ULL << (fidx & 63))))
		return XDP_PASS;

	/*
	 * 5. VIP lookup: (address, port, protocol), through the direct index
	 * and a compare with the stored key; the hash only on a shared fold.
	 * Then the destination MAC must be ours (see the rules at the top).
	 */
	idp = bpf_map_lookup_elem(&vip_index, &fidx);
	if (!idp || !*idp)
		return XDP_PASS;
	vip_num = *idp;
	if (vip_num != VIP_INDEX_COLLIDE) {
		struct vip_info *vi = bpf_map_lookup_elem(&vip_infos, &vip_num);
		const __u32 *w;

		if (!vi)
			return XDP_PASS;
		w = (const __u32 *)&vi->key;
		if (w[0] != key.dst[0] || w[1] != key.dst[1] ||
		    w[2] != key.dst[2] || w[3] != key.dst[3] ||
		    w[4] != ((key.ports >> 16) | ((__u32)proto << 16)))
			return XDP_PASS;
		vip_flags = vi->flags;
	} else {
		__builtin_memcpy(vk.addr, key.dst, 16);
		vk.port = key.ports >> 16;
		vk.proto = proto;
		vk.pad = 0;
		vip = bpf_map_lookup_elem(&vips, &vk);
		if (!vip)
			return XDP_PASS;
		vip_num = vip->vip_num;
		vip_flags = vip->flags;
	}
	/*
	 * Only a frame addressed to this interface is ours: a switch that
	 * floods unknown unicast, or promiscuous mode, delivers frames for
	 * other hosts too, and an HA standby must not forward the owner's
	 * traffic (nor a flood duplicate it). Checked here, on the VIP path
	 * only, so non-VIP packets pay nothing for it; a u32 and a u16
	 * compare against the load-time constant. Read through data, not
	 * eth->h_dest: struct ethhdr is packed, and clang would load it a
	 * byte at a time.
	 */
	if (*(__u32 *)data != *(const volatile __u32 *)&local_mac[0] ||
	    *(__u16 *)(data + 4) != *(const volatile __u16 *)&local_mac[4])
		return PASS_COUNTED(pass_not_ours);

	vs = bpf_map_lookup_elem(&vip_stats, &vip_num);
	if (!vs)
		return XDP_PASS;
	vs->packets++;
	vs->bytes += len;
	if (ip_opts)
		GSTAT_INC(ip_options);

	/*
	 * 6. QUIC: a short-header packet (RFC 9000 17.3: long-header bit
	 * clear, fixed bit set) names its server in the first byte of the
	 * destination connection ID, which our proxies chose. Connection
	 * migration changes the 5-tuple but not the ID, so the ID wins over
	 * conntrack. Long headers (Initial, 0-RTT, Handshake) carry a
	 * client-chosen ID and take the 5-tuple path, as do unknown node ids.
	 */
	if ((vip_flags & VIP_F_QUIC) && proto == IPPROTO_UDP_) {
		__u8 *q = l4 + sizeof(struct udphdr);

		if ((void *)(q + 2) <= data_end &&
		    (q[0] & (QUIC_LONG_HEADER | QUIC_FIXED_BIT)) == QUIC_FIXED_BIT &&
		    q[1] != 0) {
			__u32 qk = vip_num * QUIC_NODE_SLOTS + q[1];

			idp = bpf_map_lookup_elem(&quic_nodes, &qk);
			if (idp && *idp) {
				id = *idp;
				be = backend_usable(id, vip_num);
				if (be) {
					vs->quic_routed++;
					return forward(eth, be, id, len, 0, vs);
				}
			}
			vs->quic_unknown_node++;
		}
	}

	/*
	 * 7. Conntrack. An entry pins the flow while its backend is usable
	 * (a drained backend keeps its flows; a down or removed one loses
	 * them) and, for UDP, while it is younger than the timeout.
	 *
	 * A TCP packet without SYN and without an entry is not dropped: it
	 * takes the Maglev table and gets an entry. Every node computes the
	 * same table, so a flow that arrives here after a VIP failover goes
	 * to the backend the old owner chose.
	 *
	 * SYN flood: each spoofed SYN inserts an entry, and a full LRU evicts
	 * its least recently used entry to make room. An evicted live flow is
	 * not lost: its next packet misses and Maglev sends it to the same
	 * backend unless the table changed in between. The kernel does not
	 * tell us about evictions; we count inserts (ct_inserts, and the Go
	 * side reports inserts - live entries as evictions) and failed
	 * inserts (ct_insert_fail, the packet is still forwarded).
	 *
	 * The insert is most of a new flow's cost (the kernel's LRU pop, bucket
	 * lock and a cache-cold bucket). So, as Katran does, a CPU that sees more
	 * than syn_flood_rate such SYNs in a second stops inserting for SYNs for
	 * the rest of that second [ct_syn_unpinned]: they still take Maglev, and
	 * a real connection gets its entry from its first non-SYN packet (the
	 * handshake's ACK), as a flow arriving after a failover does. Spoofed
	 * SYNs then neither evict live flows nor pay for inserts. The price: a
	 * Maglev table change between such a SYN and its ACK moves that
	 * handshake. UDP is not affected (it has no handshake to defer to).
	 */
	/*
	 * The coarse clock (one tick, a few ms) is plenty for timeouts of
	 * seconds and, unlike bpf_ktime_get_ns, reads no clocksource, which
	 * costs tens of ns in a VM.
	 */
	if (proto == IPPROTO_UDP_)
		now = bpf_ktime_get_coarse_ns();
	/*
	 * A SYN skips the lookup: it almost always opens a flow, and the
	 * insert below (BPF_NOEXIST) walks the bucket anyway. The rare SYN
	 * that finds an entry (a retransmission) is handled there.
	 */
	ct = NULL;
	if (!syn) {
		ct = bpf_map_lookup_elem(&conntrack, &key);
		if (ct) {
			id = ct->backend_id;
			be = backend_usable(id, vip_num);
			if (be && (proto == IPPROTO_TCP_ ||
				   now - ct->last_seen_ns <= udp_timeout_ns)) {
				if (proto == IPPROTO_UDP_ &&
				    now - ct->last_seen_ns > udp_refresh_ns)
					ct->last_seen_ns = now;
				vs->ct_hits++;
				return forward(eth, be, id, len, 0, vs);
			}
			vs->ct_repicks++;
		} else {
			vs->ct_misses++;
			if (proto == IPPROTO_TCP_)
				vs->ct_miss_non_syn++;
		}
	}

	/* 8. Maglev: slot = flow_hash % M, the same as l4/maglev's Lookup. */
	slot = flow_hash(&key) % maglev_size;
	table = bpf_map_lookup_elem(&maglev_tables, &vip_num);
	if (!table)
		goto no_backend;
	chunk_idx = slot >> MAGLEV_CHUNK_SHIFT;
	chunk = bpf_map_lookup_elem(table, &chunk_idx);
	if (!chunk)
		goto no_backend;
	id = chunk[slot & (MAGLEV_CHUNK - 1)];
	if (!id)
		goto no_backend;
	be = backend_usable(id, vip_num);
	if (!be) {
		/*
		 * Apply writes a table before it marks a backend down, so
		 * this is only a table written for another VIP or corrupted.
		 */
		vs->drop_bad_backend++;
		GSTAT_INC(drop_bad_backend);
		return XDP_DROP;
	}
	if (ct) {
		/* Rewrite in place: no allocation, no LRU churn. */
		ct->backend_id = id;
		ct->last_seen_ns = now;
		return forward(eth, be, id, len, 0, vs);
	} else {
		struct ct_entry ne = { .backend_id = id, .last_seen_ns = now };
		struct global_counters *g = gstats();
		long err;

		if (syn && syn_flood(g)) {
			vs->ct_misses++;
			if (g)
				g->ct_syn_unpinned++;
			return forward(eth, be, id, len, 0, vs);
		}
		err = bpf_map_update_elem(&conntrack, &key, &ne,
					  syn ? BPF_NOEXIST : BPF_ANY);
		if (err == -ERR_EEXIST) {
			/* A SYN for a tracked flow: treat it like any packet. */
			struct backend *pinned;

			ct = bpf_map_lookup_elem(&conntrack, &key);
			if (!ct)
				return forward(eth, be, id, len, 0, vs);
			pinned = backend_usable(ct->backend_id, vip_num);
			if (pinned) {
				vs->ct_hits++;
				return forward(eth, pinned, ct->backend_id, len, 0, vs);
			}
			vs->ct_repicks++;
			ct->backend_id = id;
			return forward(eth, be, id, len, 0, vs);
		}
		if (syn)
			vs->ct_misses++;
		if (err) {
			if (g)
				g->ct_insert_fail++;
			return forward(eth, be, id, len, 0, vs);
		}
		if (g)
			g->ct_inserts++;
		vs->new_flows++;
		return forward(eth, be, id, len, 1, vs);
	}

no_backend:
	vs->drop_no_backend++;
	GSTAT_INC(drop_no_backend);
	return XDP_DROP;
}
