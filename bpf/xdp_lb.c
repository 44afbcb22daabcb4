//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Portcullis L4 fast path: XDP Maglev balancer with connection tracking,
 * L2 DSR, IP-in-IP encapsulation and handoff to the local stack.
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
 *   - An ipip backend gets the frame with an outer IPv4 (IPv6) header in
 *     front of the inner one [encap_v4, encap_v6]; see encap. One
 *     whose encapsulated size would pass encap_mtu is answered with ICMP
 *     fragmentation-needed / ICMPv6 packet-too-big [icmp_too_big], or
 *     dropped when that is switched off or the packet has IPv4 options
 *     [drop_too_big]. No headroom for the outer header: XDP_DROP
 *     [drop_encap_fail]. A gue backend gets an outer IP and UDP header
 *     [encap_gue], with the same rules.
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
/*
 * Outer source addresses of encapsulated packets (network order): the
 * base address, ORed with bits of a per-flow value where the host mask
 * has them set (see outer_src_bits). A zero mask means the base address
 * alone (the LB's own address). IPv6 varies only its last word.
 */
const volatile __u32 encap_src4 = 0;
const volatile __u32 encap_mask4 = 0;
const volatile __u32 encap_src6[4] = {};
const volatile __u32 encap_mask6 = 0;
/* L3 MTU of the path to the backends; the outer header counts. */
const volatile __u32 encap_mtu = ENCAP_DEFAULT_MTU;
/* Answer packets too big to encapsulate (1) or drop them (0). */
const volatile __u8 encap_icmp = 1;

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

/*
 * The per-flow part of the outer source address: the inner source's last
 * word mixed with the source port, so that each client flow (not just
 * each client) gets its own outer 2-tuple and the backend's RSS, which
 * hashes only the outer addresses of an IPIP packet, spreads flows over
 * its queues (Katran's reason for the same trick). Stable per flow, so a
 * flow stays on one queue. Host order.
 */
static __always_inline __u32 outer_src_bits(const struct flow_key *k)
{
	__u32 sport = bpf_ntohs((__u16)k->ports);
	__u32 h = bpf_ntohl(k->src[3]) ^ (sport << 16) ^ sport;

	/* One multiply: neighbouring ports differ in many low bits. */
	return h * 0x9E3779B1U;
}

/*
 * Adds len bytes (even, a constant) at p to an unfolded checksum. Fully
 * unrolled: a plain unroll pragma leaves a loop here once inlined, and the
 * verifier cannot follow the packet bound through it.
 */
static __always_inline __u32 csum_add(__u32 sum, const void *p, const int len)
{
	const __u16 *w = p;

#pragma clang loop unroll(full)
	for (int i = 0; i < len / 2; i++)
		sum += w[i];
	return sum;
}

static __always_inline __u16 csum_fold(__u32 sum)
{
	sum = (sum & 0xFFFF) + (sum >> 16);
	sum = (sum & 0xFFFF) + (sum >> 16);
	return (__u16)~sum;
}

/*
 * This interface's MAC as the frame's source, byte by byte through the
 * volatile: a memcpy would drop the qualifier and clang would fold the
 * zero initialiser.
 */
static __always_inline void set_src_mac(struct ethhdr *eth)
{
#pragma unroll
	for (int i = 0; i < ETH_ALEN; i++)
		eth->h_source[i] = local_mac[i];
}

/*
 * Grows the frame by grow bytes in front (bpf_xdp_adjust_head) and moves
 * the L2 header (14 bytes, or 18 with a VLAN tag) up to the new start,
 * readdressed to dst from this interface; the ranges do not overlap for
 * the grows used here (>= 20). Returns the new start once l3off + grow +
 * need bytes are known to be there, or NULL: drop the packet (counted
 * [drop_encap_fail] when the headroom is short).
 */
static __always_inline void *push_front(struct xdp_md *ctx, __u32 l3off,
					const int grow, const int need,
					const __u8 *dst)
{
	void *data, *data_end;
	struct ethhdr *eth;

	if (bpf_xdp_adjust_head(ctx, -grow)) {
		GSTAT_INC(drop_encap_fail);
		return NULL;
	}
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (data + l3off + grow + need > data_end)
		return NULL;
	if (data + grow + ETH_HDR_LEN + VLAN_HDR_LEN > data_end)
		return NULL;
	__builtin_memcpy(data, data + grow, ETH_HDR_LEN);
	if (l3off > ETH_HDR_LEN)
		__builtin_memcpy(data + ETH_HDR_LEN, data + grow + ETH_HDR_LEN,
				 VLAN_HDR_LEN);
	eth = data;
	__builtin_memcpy(eth->h_dest, dst, ETH_ALEN);
	set_src_mac(eth);
	return data;
}

/* Fills in the header checksum of a 20-byte IPv4 header. */
static __always_inline void ipv4_csum(struct iphdr *ip)
{
	ip->check = 0;
	ip->check = csum_fold(csum_add(0, ip, IPV4_HDR_LEN));
}

/*
 * ICMP fragmentation needed (RFC 792, RFC 1191) back to the client, from
 * the VIP, quoting the packet's IP header and 8 bytes (its ports). Only
 * for a 20-byte inner header: with options the quote would have a
 * variable length, and such packets are dropped and counted instead.
 * The frame becomes l3off + 20 + 8 + 28 bytes; XDP_TX sends it back.
 */
static __noinline int icmp_too_big4(struct xdp_md *ctx, __u32 l3off, __u32 overhead)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	const int grow = IPV4_HDR_LEN + ICMP_HDR_LEN;
	struct iphdr *ip, *in;
	__u8 *icmp, cmac[ETH_ALEN];
	__u32 frame;

	/* 14 or 18; the mask gives the verifier a bound it keeps. */
	l3off &= 0x1F;
	in = data + l3off;
	if ((void *)(in + 1) > data_end)
		return XDP_DROP;
	if (*(__u8 *)in != 0x45 || !encap_icmp) {
		GSTAT_INC(drop_too_big);
		return XDP_DROP;
	}
	if (data + ETH_HDR_LEN > data_end)
		return XDP_DROP;
	__builtin_memcpy(cmac, ((struct ethhdr *)data)->h_source, ETH_ALEN);
	data = push_front(ctx, l3off, grow, ICMP4_QUOTE, cmac);
	if (!data)
		return XDP_DROP;
	data_end = (void *)(long)ctx->data_end;
	ip = data + l3off;
	icmp = (__u8 *)(ip + 1);
	in = (struct iphdr *)(icmp + ICMP_HDR_LEN);

	*(__u8 *)ip = 0x45;
	ip->tos = 0;
	ip->tot_len = bpf_htons(IPV4_HDR_LEN + ICMP_HDR_LEN + ICMP4_QUOTE);
	ip->id = 0;
	ip->frag_off = 0;
	ip->ttl = ENCAP_TTL;
	ip->protocol = IPPROTO_ICMP_;
	ip->saddr = in->daddr;
	ip->daddr = in->saddr;
	ipv4_csum(ip);

	icmp[0] = ICMP_DEST_UNREACH;
	icmp[1] = ICMP_FRAG_NEEDED;
	*(__u16 *)(icmp + 2) = 0;
	*(__u16 *)(icmp + 4) = 0;
	*(__u16 *)(icmp + 6) = bpf_htons(encap_mtu - overhead);
	*(__u16 *)(icmp + 2) =
		csum_fold(csum_add(0, icmp, ICMP_HDR_LEN + ICMP4_QUOTE));

	frame = l3off + grow + ICMP4_QUOTE;
	if (bpf_xdp_adjust_tail(ctx, (int)frame - (int)(data_end - data)))
		return XDP_DROP;
	GSTAT_INC(icmp_too_big);
	return XDP_TX;
}

/*
 * ICMPv6 packet too big (RFC 4443 3.2) back to the client, from the VIP,
 * quoting the IPv6 header and 8 bytes. RFC 4443 asks for as much of the
 * packet as fits in 1280 bytes; the header and ports are all a client's
 * kernel reads to lower the path MTU of the flow's socket.
 */
static __noinline int icmp_too_big6(struct xdp_md *ctx, __u32 l3off, __u32 overhead)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	const int grow = IPV6_HDR_LEN + ICMP_HDR_LEN;
	struct ipv6hdr *ip, *in;
	__u8 *icmp, cmac[ETH_ALEN];
	__u32 sum, frame;

	/* 14 or 18; the mask gives the verifier a bound it keeps. */
	l3off &= 0x1F;
	if (!encap_icmp) {
		GSTAT_INC(drop_too_big);
		return XDP_DROP;
	}
	if (data + ETH_HDR_LEN > data_end)
		return XDP_DROP;
	__builtin_memcpy(cmac, ((struct ethhdr *)data)->h_source, ETH_ALEN);
	data = push_front(ctx, l3off, grow, ICMP6_QUOTE, cmac);
	if (!data)
		return XDP_DROP;
	data_end = (void *)(long)ctx->data_end;
	ip = data + l3off;
	icmp = (__u8 *)(ip + 1);
	in = (struct ipv6hdr *)(icmp + ICMP_HDR_LEN);

	*(__u32 *)ip = bpf_htonl(0x60000000);
	ip->payload_len = bpf_htons(ICMP_HDR_LEN + ICMP6_QUOTE);
	ip->nexthdr = IPPROTO_ICMPV6_;
	ip->hop_limit = ENCAP_TTL;
	ip->saddr = in->daddr;
	ip->daddr = in->saddr;

	icmp[0] = ICMPV6_PKT_TOOBIG;
	icmp[1] = 0;
	*(__u16 *)(icmp + 2) = 0;
	*(__u32 *)(icmp + 4) = bpf_htonl(encap_mtu - overhead);
	/* Pseudo-header (RFC 8200 8.1): addresses, length, next header. */
	sum = bpf_htons(ICMP_HDR_LEN + ICMP6_QUOTE) + bpf_htons(IPPROTO_ICMPV6_);
	sum = csum_add(sum, &ip->saddr, 32);
	sum = csum_add(sum, icmp, ICMP_HDR_LEN + ICMP6_QUOTE);
	*(__u16 *)(icmp + 2) = csum_fold(sum);

	frame = l3off + grow + ICMP6_QUOTE;
	if (bpf_xdp_adjust_tail(ctx, (int)frame - (int)(data_end - data)))
		return XDP_DROP;
	GSTAT_INC(icmp_too_big);
	return XDP_TX;
}

/*
 * The UDP header of GUE variant 1 in front of an inner packet of
 * inner_len bytes (see encap4 below): source port from the per-flow bits,
 * checksum 0.
 */
static __always_inline void gue_udp(struct udphdr *u, const struct backend *be,
				    __u32 bits, __u32 inner_len)
{
	u->source = bpf_htons(GUE_SPORT_BASE | (bits >> 18));
	u->dest = bpf_htons(be->encap_port);
	u->len = bpf_htons(inner_len + UDP_HDR_LEN);
	u->check = 0;
}

/*
 * IP-in-IP (RFC 2003, protocol 4) or IPv6-in-IPv6 (RFC 2473, next header
 * 41) to the backend's address, or with udp, GUE variant 1 (the client's
 * IP packet right after an outer IP and UDP header, to port
 * be->encap_port; draft-ietf-intarea-gue section 4): the frame grows by
 * the outer headers in front of the client's packet, which is not touched
 * (the backend's decap program, bpf/xdp_decap.c, restores it and the
 * server holding the VIP on lo answers the client directly). The outer
 * header:
 *   - source: encap_src4/6 with per-flow bits (outer_src_bits);
 *   - destination: the backend; TTL / hop limit ENCAP_TTL;
 *   - DSCP and ECN copied from the inner header (RFC 2983 uniform model
 *     for DSCP, RFC 6040 normal mode for ECN); IPv4 DF set, id 0 (RFC
 *     6864: an atomic datagram), because fragments of the outer packet
 *     would reach a decap program that cannot reassemble; IPv6 flow label
 *     from the same per-flow bits, for ECMP (RFC 6438);
 *   - GUE: UDP source port from the per-flow bits (49152 and up), so NICs
 *     that hash UDP ports spread flows too; UDP checksum 0 (RFC 768 for
 *     IPv4; RFC 6935/6936 for a tunnel over IPv6, whose decap end is our
 *     own program, not the kernel's UDP);
 *   - L2: to be->mac (the next hop), from this interface.
 * Inlined into encap() once per family and mode, with udp a constant.
 */
static __always_inline int encap4(struct xdp_md *ctx, const struct backend *be,
				  __u32 l3off, __u32 bits, const int udp)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	const int hdr = IPV4_HDR_LEN + (udp ? UDP_HDR_LEN : 0);
	struct iphdr *in = data + l3off, *o;
	__u32 inner_len;
	__u8 tos;

	if ((void *)(in + 1) > data_end)
		return XDP_DROP;
	if ((*(__u8 *)in >> 4) != 4) {
		GSTAT_INC(drop_bad_backend);
		return XDP_DROP;
	}
	inner_len = bpf_ntohs(in->tot_len);
	if (inner_len + hdr > encap_mtu)
		return icmp_too_big4(ctx, l3off, hdr);
	tos = in->tos;
	data = push_front(ctx, l3off, hdr, IPV4_HDR_LEN, be->mac);
	if (!data)
		return XDP_DROP;
	o = data + l3off;
	*(__u8 *)o = 0x45;
	o->tos = tos;
	o->tot_len = bpf_htons(inner_len + hdr);
	o->id = 0;
	o->frag_off = bpf_htons(IPV4_DF);
	o->ttl = ENCAP_TTL;
	o->protocol = udp ? IPPROTO_UDP_ : IPPROTO_IPIP_;
	o->saddr = encap_src4 | (bpf_htonl(bits) & encap_mask4);
	o->daddr = be->addr[3];
	ipv4_csum(o);
	if (udp) {
		gue_udp((void *)(o + 1), be, bits, inner_len);
		GSTAT_INC(encap_gue);
	} else {
		GSTAT_INC(encap_v4);
	}
	return XDP_TX;
}

static __always_inline int encap6(struct xdp_md *ctx, const struct backend *be,
				  __u32 l3off, __u32 bits, const int udp)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	const int hdr = IPV6_HDR_LEN + (udp ? UDP_HDR_LEN : 0);
	struct ipv6hdr *in = data + l3off, *o;
	__u32 inner_len, tc;

	if ((void *)(in + 1) > data_end)
		return XDP_DROP;
	if ((*(__u8 *)in >> 4) != 6) {
		GSTAT_INC(drop_bad_backend);
		return XDP_DROP;
	}
	inner_len = bpf_ntohs(in->payload_len) + IPV6_HDR_LEN;
	if (inner_len + hdr > encap_mtu)
		return icmp_too_big6(ctx, l3off, hdr);
	/* Version and traffic class: the first 12 bits. */
	tc = bpf_ntohl(*(__u32 *)in) & 0xFFF00000;
	data = push_front(ctx, l3off, hdr, IPV6_HDR_LEN, be->mac);
	if (!data)
		return XDP_DROP;
	o = data + l3off;
	*(__u32 *)o = bpf_htonl(tc | (bits & 0xFFFFF));
	o->payload_len = bpf_htons(inner_len + (udp ? UDP_HDR_LEN : 0));
	o->nexthdr = udp ? IPPROTO_UDP_ : IPPROTO_IPV6_;
	o->hop_limit = ENCAP_TTL;
	o->saddr.in6_u.u6_addr32[0] = encap_src6[0];
	o->saddr.in6_u.u6_addr32[1] = encap_src6[1];
	o->saddr.in6_u.u6_addr32[2] = encap_src6[2];
	o->saddr.in6_u.u6_addr32[3] = encap_src6[3] | (bpf_htonl(bits) & encap_mask6);
	__builtin_memcpy(&o->daddr, be->addr, 16);
	if (udp) {
		gue_udp((void *)(o + 1), be, bits, inner_len);
		GSTAT_INC(encap_gue);
	} else {
		GSTAT_INC(encap_v6);
	}
	return XDP_TX;
}

/* Not inlined: one copy of the code, not one per forward() call site. */
static __noinline int encap(struct xdp_md *ctx, const struct backend *be,
			    __u32 l3off, const struct flow_key *k)
{
	__u32 bits = outer_src_bits(k);

	/* 14 or 18; the mask gives the verifier a bound it keeps. */
	l3off &= 0x1F;
	if (be->mode == BE_MODE_GUE) {
		if (be->flags & BE_F_V6)
			return encap6(ctx, be, l3off, bits, 1);
		return encap4(ctx, be, l3off, bits, 1);
	}
	if (be->flags & BE_F_V6)
		return encap6(ctx, be, l3off, bits, 0);
	return encap4(ctx, be, l3off, bits, 0);
}

static __always_inline int forward(struct xdp_md *ctx, struct ethhdr *eth,
				   struct backend *be, __u32 id, __u64 len,
				   int new_flow, struct vip_counters *vs,
				   __u32 l3off, const struct flow_key *k)
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
		set_src_mac(eth);
		return XDP_TX;
	}
	if (be->mode == BE_MODE_IPIP || be->mode == BE_MODE_GUE)
		return encap(ctx, be, l3off, k);
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
					return forward(ctx, eth, be, id, len, 0, vs, l3 - data, &key);
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
				return forward(ctx, eth, be, id, len, 0, vs, l3 - data, &key);
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
		return forward(ctx, eth, be, id, len, 0, vs, l3 - data, &key);
	} else {
		struct ct_entry ne = { .backend_id = id, .last_seen_ns = now };
		struct global_counters *g = gstats();
		long err;

		if (syn && syn_flood(g)) {
			vs->ct_misses++;
			if (g)
				g->ct_syn_unpinned++;
			return forward(ctx, eth, be, id, len, 0, vs, l3 - data, &key);
		}
		err = bpf_map_update_elem(&conntrack, &key, &ne,
					  syn ? BPF_NOEXIST : BPF_ANY);
		if (err == -ERR_EEXIST) {
			/* A SYN for a tracked flow: treat it like any packet. */
			struct backend *pinned;

			ct = bpf_map_lookup_elem(&conntrack, &key);
			if (!ct)
				return forward(ctx, eth, be, id, len, 0, vs, l3 - data, &key);
			pinned = backend_usable(ct->backend_id, vip_num);
			if (pinned) {
				vs->ct_hits++;
				return forward(ctx, eth, pinned, ct->backend_id, len, 0, vs, l3 - data, &key);
			}
			vs->ct_repicks++;
			ct->backend_id = id;
			return forward(ctx, eth, be, id, len, 0, vs, l3 - data, &key);
		}
		if (syn)
			vs->ct_misses++;
		if (err) {
			if (g)
				g->ct_insert_fail++;
			return forward(ctx, eth, be, id, len, 0, vs, l3 - data, &key);
		}
		if (g)
			g->ct_inserts++;
		vs->new_flows++;
		return forward(ctx, eth, be, id, len, 1, vs, l3 - data, &key);
	}

no_backend:
	vs->drop_no_backend++;
	GSTAT_INC(drop_no_backend);
	return XDP_DROP;
}
