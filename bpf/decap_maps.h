/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Every map of the backend decapsulation program (xdp_decap.c) and the
 * records they hold. Package l4/decap uses the types bpf2go generates.
 */
#ifndef PORTCULLIS_DECAP_MAPS_H
#define PORTCULLIS_DECAP_MAPS_H

#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "lb_consts.h"

/*
 * An allow-list entry: a CIDR of load balancers (their encap source
 * prefixes). IPv4 is stored v4-mapped, its prefix length plus 96, so one
 * trie holds both families.
 */
struct decap_prefix {
	__u32 prefixlen;
	__u32 addr[4];
};

/* Per CPU, one record. */
struct decap_counters {
	__u64 decap_v4;         /* IPv4-in-IPv4 stripped and passed */
	__u64 decap_v6;         /* IPv6-in-IPv6 stripped and passed */
	__u64 decap_gue;        /* of decap_v4 + decap_v6: those that came in GUE */
	__u64 decap_bytes;      /* inner bytes passed (Ethernet header included) */
	__u64 drop_not_allowed; /* outer source not in the allow-list */
	__u64 drop_bad_inner;   /* inner packet truncated or of the wrong version */
	__u64 pass_not_local;   /* outer destination not one of this host's */
	__u64 pass_trunc;       /* Ethernet/VLAN/outer header cut short */
	__u64 pass_bad_outer;   /* bad version, IHL < 5, total length too small */
	__u64 pass_frag;        /* the outer packet is a fragment */
	__u64 pass_v6_ext;      /* IPv6 extension headers before the inner packet */
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, DECAP_MAX_ALLOW);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct decap_prefix);
	__type(value, __u32);
} decap_allow SEC(".maps");

/* This host's addresses, v4-mapped: an outer destination must be one. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DECAP_MAX_LOCAL);
	__type(key, __u32[4]);
	__type(value, __u32);
} decap_local SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct decap_counters);
} decap_stats SEC(".maps");

#endif
