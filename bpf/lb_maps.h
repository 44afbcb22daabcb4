/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Every map of the XDP balancer and the records they hold. The Go side
 * (package l4) uses the types bpf2go generates from these declarations,
 * so a field added here shows up there without hand-written mirrors.
 */
#ifndef PORTCULLIS_LB_MAPS_H
#define PORTCULLIS_LB_MAPS_H

#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "lb_consts.h"

/*
 * A VIP is (address, port, protocol). The vips hash holds every VIP; the
 * fast path only consults it for folds two VIPs share (vip_index). IPv4 addresses are stored
 * v4-mapped (::ffff:a.b.c.d) so one map serves both families.
 */
struct vip_key {
	__u32 addr[4];
	__u16 port; /* network order */
	__u8 proto;
	__u8 pad;
};

/* vip_infos[vip_num]: the key, to confirm a vip_index hit, and flags. */
struct vip_info {
	struct vip_key key;
	__u32 flags;
};

struct vip_meta {
	__u32 vip_num; /* 1..MAX_VIPS-1: index into the per-VIP arrays */
	__u32 flags;   /* VIP_F_* */
};

/*
 * One backend of one VIP. The encapsulating modes use the address and
 * family (BE_F_V6) as the outer destination and mac as the next hop (the
 * router's or, on the same segment, the backend's). vip_num names the owning VIP: ids
 * are reused after a backend is removed, and a conntrack entry that still
 * names an old id must not follow it to another VIP's backend.
 */
struct backend {
	__u8 mode;   /* BE_MODE_* */
	__u8 flags;  /* BE_F_* */
	__u8 mac[6]; /* next hop: the backend (dsr-l2), router or backend (ipip) */
	__u32 addr[4]; /* v4-mapped for IPv4; the outer destination (ipip) */
	__u32 vip_num;
	__u16 encap_port; /* GUE destination port (host order) */
	__u16 reserved0;
	__u32 reserved1;
	__u32 reserved2;
};

/*
 * The conntrack key doubles as the flow hash input: 40 bytes, read as
 * five little-endian u64 words (see flow_hash in xdp_lb.c).
 */
struct flow_key {
	__u32 src[4];
	__u32 dst[4];
	__u32 ports; /* source port then destination port, network order */
	__u8 proto;
	__u8 pad[3];
};

struct ct_entry {
	__u32 backend_id;
	__u32 pad;
	__u64 last_seen_ns; /* only maintained for UDP */
};

/* Per VIP, per CPU. */
struct vip_counters {
	__u64 packets;
	__u64 bytes;
	__u64 new_flows;      /* conntrack entries created */
	__u64 ct_hits;
	__u64 ct_misses;      /* no entry: new flow or a flow from another node */
	__u64 ct_miss_non_syn; /* subset of ct_misses: TCP without SYN */
	__u64 ct_repicks;     /* entry pointed at a down/expired/stale backend */
	__u64 quic_routed;    /* short header routed by connection-ID node id */
	__u64 quic_unknown_node;
	__u64 drop_no_backend;
	__u64 drop_bad_backend;
};

/* Per backend, per CPU. */
struct backend_counters {
	__u64 packets;
	__u64 bytes;
	__u64 new_flows;
};

/*
 * Global, per CPU, one record. Every packet the program does not handle
 * normally is counted here by reason; see the rules in xdp_lb.c.
 */
struct global_counters {
	__u64 pass_trunc_l2;   /* shorter than its Ethernet/VLAN header */
	__u64 pass_qinq;       /* more than one VLAN tag */
	__u64 pass_trunc_l3;   /* shorter than its IP header */
	__u64 pass_bad_l3;     /* bad version, IHL < 5, total length too small */
	__u64 pass_frag_v4;    /* IPv4 MF set or offset != 0 */
	__u64 pass_frag_v6;    /* IPv6 fragment header */
	__u64 pass_v6_ext;     /* other IPv6 extension headers */
	__u64 pass_trunc_l4;   /* shorter than its TCP/UDP header */
	__u64 pass_not_ours;   /* VIP packet whose destination MAC is not local_mac */
	__u64 ip_options;      /* IPv4 with options: balanced normally */
	__u64 ct_inserts;      /* new conntrack keys; minus live entries = evictions */
	__u64 ct_insert_fail;
	__u64 ct_syn_unpinned; /* SYNs balanced without an entry (flood guard) */
	__u64 drop_no_backend;
	__u64 drop_bad_backend;
	__u64 encap_v4;        /* packets sent IPv4-in-IPv4 */
	__u64 encap_v6;        /* packets sent IPv6-in-IPv6 */
	__u64 encap_gue;       /* packets sent in GUE (IP-in-UDP), either family */
	__u64 icmp_too_big;    /* too big to encapsulate: ICMP/ICMPv6 answered */
	__u64 drop_too_big;    /* too big to encapsulate, not answered */
	__u64 drop_encap_fail; /* no headroom for the outer header */
	/*
	 * Not counters: the SYN flood guard's window on this CPU, kept here
	 * because the new-flow path already holds this record (a map of its
	 * own cost a lookup per SYN). Signed, so Stats and the metrics, which
	 * take every __u64 as a counter, leave them out.
	 */
	__s64 syn_window_start_ns; /* coarse clock */
	__s64 syn_window_syns;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_VIPS);
	/*
	 * Not preallocated: Apply rewrites values in place, and a
	 * preallocated element can be recycled while a reader on another CPU
	 * still holds it. Freed elements here go through RCU.
	 */
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct vip_key);
	__type(value, struct vip_meta);
} vips SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, VIP_FILTER_WORDS);
	__type(key, __u32);
	__type(value, __u64);
} vip_filter SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, VIP_FILTER_BITS);
	__type(key, __u32);
	__type(value, __u32);
} vip_index SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_VIPS);
	__type(key, __u32);
	__type(value, struct vip_info);
} vip_infos SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct backend);
} backends SEC(".maps");

/*
 * Maglev tables: one outer slot per VIP number, pointing at an inner
 * array of maglev_size backend ids (packed, see MAGLEV_CHUNK). The loader keeps two inner arrays per
 * VIP, writes the spare one and then swaps the outer pointer: a single
 * atomic exchange, so a packet sees the whole old table or the whole new
 * one. Inner arrays have a fixed size (not BPF_F_INNER_MAP) so the
 * verifier can inline the inner lookup.
 */
struct maglev_inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAGLEV_DEFAULT_CHUNKS);
	__type(key, __u32);
	/* An array type, not a struct: clang emits only a forward
	 * declaration for a struct reached through the inner-map template. */
	__type(value, __u16[MAGLEV_CHUNK]);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, MAX_VIPS);
	__type(key, __u32);
	__array(values, struct maglev_inner);
} maglev_tables SEC(".maps");

/* (vip_num * QUIC_NODE_SLOTS + node id) -> backend id, 0 = unknown. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_VIPS * QUIC_NODE_SLOTS);
	__type(key, __u32);
	__type(value, __u32);
} quic_nodes SEC(".maps");

/*
 * Connection table. One LRU shared by all CPUs: RSS keeps a flow on one
 * CPU anyway, and a shared table gives the configured capacity exactly
 * (BPF_F_NO_COMMON_LRU would split it per CPU). When it is full, every
 * insert evicts the least recently used entry; see the SYN flood note in
 * xdp_lb.c. max_entries is set by the loader.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, CT_DEFAULT_SIZE);
	__type(key, struct flow_key);
	__type(value, struct ct_entry);
} conntrack SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_VIPS);
	__type(key, __u32);
	__type(value, struct vip_counters);
} vip_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct backend_counters);
} backend_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct global_counters);
} global_stats SEC(".maps");

#endif
