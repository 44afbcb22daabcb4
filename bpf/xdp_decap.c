//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Portcullis backend decapsulation: the other end of the balancer's ipip
 * and gue modes (xdp_lb.c, encap), for kernels without the ipip,
 * ip6_tunnel and fou modules and without their per-packet cost.
 *
 * parse L2 -> outer IPv4 (protocol 4) or IPv6 (next header 41), or either
 * with UDP to gue_port (GUE variant 1: the inner IP packet right after
 * the UDP header) ->
 * outer destination is this host (decap_local) -> outer source in the
 * allow-list (decap_allow) -> inner header sane -> strip the outer
 * header -> XDP_PASS the inner packet, which the server holding the VIP
 * on lo answers directly.
 *
 * Rules (counted in decap_stats, field in brackets):
 *   - Not IP-in-IP of the same family (including 4in6 and 6in4, which the
 *     balancer never sends), UDP to another port than gue_port (or any
 *     UDP when gue_port is 0): XDP_PASS untouched, uncounted.
 *   - Ethernet/VLAN/outer header cut short [pass_trunc], bad outer
 *     header [pass_bad_outer], outer fragments [pass_frag], IPv6
 *     extension headers before the inner packet [pass_v6_ext], outer
 *     destination not one of ours [pass_not_local]: XDP_PASS untouched;
 *     the kernel, which has no tunnel module here, drops them.
 *   - Outer source not in the allow-list: XDP_DROP [drop_not_allowed].
 *     Without this check anyone who can reach the backend could inject
 *     packets from any source address, VIP included.
 *   - Inner packet cut short or of the other version: XDP_DROP
 *     [drop_bad_inner] (allowed, so ours, and garbage).
 *   - Truncated outer UDP header of a would-be GUE packet [pass_trunc].
 *   - The Ethernet header is kept (it stays addressed to us); the inner
 *     IP packet is passed byte for byte as the client sent it.
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "lb_consts.h"
#include "decap_maps.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct vlanhdr {
	__be16 tci;
	__be16 proto;
};

static __always_inline struct decap_counters *dstats(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&decap_stats, &zero);
}

#define DSTAT_INC(field)                                 \
	({                                               \
		struct decap_counters *__d = dstats();   \
		if (__d)                                 \
			__d->field++;                    \
	})

#define V4_MAPPED_WORD bpf_htonl(0x0000FFFF)

/* GUE destination port (portcullis decap --gue-port); 0: no GUE. */
const volatile __u16 gue_port = 0;

SEC("xdp")
int xdp_decap(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct decap_prefix src = { .prefixlen = 128 };
	__u32 dst[4] = {};
	__u32 l2len = ETH_HDR_LEN, hlen, inner_min, *ok;
	__u16 proto;
	__u8 v6, next, gue = 0;
	void *l3, *inner;
	struct decap_counters *c;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	proto = eth->h_proto;
	l3 = eth + 1;
	if (proto == bpf_htons(ETHTYPE_VLAN)) {
		struct vlanhdr *vh = l3;

		if ((void *)(vh + 1) > data_end) {
			DSTAT_INC(pass_trunc);
			return XDP_PASS;
		}
		proto = vh->proto;
		l3 = vh + 1;
		l2len += VLAN_HDR_LEN;
	}

	if (proto == bpf_htons(ETHTYPE_IPV4)) {
		struct iphdr *ip = l3;
		__u8 vihl;

		if ((void *)(ip + 1) > data_end) {
			DSTAT_INC(pass_trunc);
			return XDP_PASS;
		}
		if (ip->protocol != IPPROTO_IPIP_ &&
		    !(ip->protocol == IPPROTO_UDP_ && gue_port))
			return XDP_PASS;
		vihl = *(__u8 *)ip;
		if ((vihl >> 4) != 4 || (vihl & 0xF) < 5) {
			DSTAT_INC(pass_bad_outer);
			return XDP_PASS;
		}
		hlen = (__u32)(vihl & 0xF) << 2;
		if (bpf_ntohs(ip->tot_len) < hlen) {
			DSTAT_INC(pass_bad_outer);
			return XDP_PASS;
		}
		if (ip->frag_off & bpf_htons(IPV4_MF_OFFSET_MASK)) {
			DSTAT_INC(pass_frag);
			return XDP_PASS;
		}
		next = ip->protocol;
		v6 = 0;
		src.addr[2] = V4_MAPPED_WORD;
		src.addr[3] = ip->saddr;
		dst[2] = V4_MAPPED_WORD;
		dst[3] = ip->daddr;
		inner_min = IPV4_HDR_LEN;
	} else if (proto == bpf_htons(ETHTYPE_IPV6)) {
		struct ipv6hdr *ip6 = l3;
		__u8 nh;

		if ((void *)(ip6 + 1) > data_end) {
			DSTAT_INC(pass_trunc);
			return XDP_PASS;
		}
		nh = ip6->nexthdr;
		if (nh == IPV6_NH_FRAGMENT) {
			DSTAT_INC(pass_frag);
			return XDP_PASS;
		}
		if (nh == IPV6_NH_HOPOPTS || nh == IPV6_NH_ROUTING ||
		    nh == IPV6_NH_DSTOPTS) {
			DSTAT_INC(pass_v6_ext);
			return XDP_PASS;
		}
		if (nh != IPPROTO_IPV6_ && !(nh == IPPROTO_UDP_ && gue_port))
			return XDP_PASS;
		if ((*(__u8 *)ip6 >> 4) != 6) {
			DSTAT_INC(pass_bad_outer);
			return XDP_PASS;
		}
		next = nh;
		v6 = 1;
		hlen = IPV6_HDR_LEN;
		__builtin_memcpy(src.addr, &ip6->saddr, 16);
		__builtin_memcpy(dst, &ip6->daddr, 16);
		inner_min = IPV6_HDR_LEN;
	} else {
		return XDP_PASS;
	}

	if (next == IPPROTO_UDP_) {
		struct udphdr *u;

		hlen &= 0x3F;
		u = l3 + hlen;
		if ((void *)(u + 1) > data_end) {
			DSTAT_INC(pass_trunc);
			return XDP_PASS;
		}
		if (u->dest != bpf_htons(gue_port))
			return XDP_PASS;
		hlen += UDP_HDR_LEN;
		gue = 1;
	}

	ok = bpf_map_lookup_elem(&decap_local, dst);
	if (!ok) {
		DSTAT_INC(pass_not_local);
		return XDP_PASS;
	}
	ok = bpf_map_lookup_elem(&decap_allow, &src);
	if (!ok) {
		DSTAT_INC(drop_not_allowed);
		return XDP_DROP;
	}

	/* The inner packet: its version and a whole fixed header. */
	hlen &= 0x7F; /* <= 68, which the verifier keeps */
	inner = l3 + hlen;
	if (inner + inner_min > data_end ||
	    (*(__u8 *)inner >> 4) != (v6 ? 6 : 4)) {
		DSTAT_INC(drop_bad_inner);
		return XDP_DROP;
	}

	/*
	 * Move the L2 header up against the inner packet, then drop the
	 * space in front. hlen >= 20 > 18, so the ranges never overlap.
	 */
	if (data + hlen + ETH_HDR_LEN + VLAN_HDR_LEN > data_end ||
	    data + ETH_HDR_LEN + VLAN_HDR_LEN > data_end) {
		DSTAT_INC(drop_bad_inner);
		return XDP_DROP;
	}
	__builtin_memcpy(data + hlen, data, ETH_HDR_LEN);
	if (l2len > ETH_HDR_LEN)
		__builtin_memcpy(data + hlen + ETH_HDR_LEN, data + ETH_HDR_LEN,
				 VLAN_HDR_LEN);
	if (bpf_xdp_adjust_head(ctx, (int)hlen))
		return XDP_DROP;

	c = dstats();
	if (c) {
		if (v6)
			c->decap_v6++;
		else
			c->decap_v4++;
		c->decap_gue += gue;
		c->decap_bytes += (long)ctx->data_end - (long)ctx->data;
	}
	return XDP_PASS;
}
