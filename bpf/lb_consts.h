/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Every constant the XDP balancer uses. Values the loader may change at
 * load time are volatile const globals in xdp_lb.c; what is here is the
 * fixed shape of the maps, shared with Go through the generated types and
 * mirrored in l4/consts.go (a test there keeps the two in step).
 */
#ifndef PORTCULLIS_LB_CONSTS_H
#define PORTCULLIS_LB_CONSTS_H

/*
 * Map dimensions. VIP numbers and backend ids index arrays, and 0 means
 * "none" in both, so the usable ranges are 1..MAX_VIPS-1 and
 * 1..MAX_BACKENDS-1. A Maglev slot holding 0 therefore means "no backend
 * has weight", which needs no separate flag.
 */
#define MAX_VIPS 512
#define MAX_BACKENDS 4096

/* QUIC node ids are one byte; 0 means "not routed by node id". */
#define QUIC_NODE_SLOTS 256

/*
 * The VIP prefilter is a bitmap of 2^16 bits (8 KiB, one array map of
 * 1024 u64) indexed by a fold of the destination address and port. Most
 * non-VIP packets are answered by one inlined array load instead of a
 * hash-map lookup. False positives only cost the real lookup.
 */
#define VIP_FILTER_BITS 65536
#define VIP_FILTER_WORDS (VIP_FILTER_BITS / 64)

/*
 * vip_index maps the same fold to the one VIP number that has it, so a
 * VIP packet is found with two inlined array loads and a key compare
 * instead of a hash-map lookup (about 25 ns cheaper here). A fold shared
 * by two VIPs holds VIP_INDEX_COLLIDE and such packets use the vips hash.
 */
#define VIP_INDEX_COLLIDE 0xFFFFFFFFU

/*
 * Maglev slots are packed 32 backend ids (u16) to a 64-byte array
 * element: array maps round every element up to 8 bytes, so one u32 per
 * slot would take 8 bytes, and a 65537-slot table 512 KiB. Packed it is
 * 128 KiB and a new flow's slot is far more often already in cache.
 * Backend ids fit in u16 (MAX_BACKENDS).
 */
#define MAGLEV_CHUNK 32
#define MAGLEV_CHUNK_SHIFT 5

/* Defaults; the loader overrides them (l4.Config). */
#define MAGLEV_DEFAULT_SIZE 65537
#define MAGLEV_DEFAULT_CHUNKS ((MAGLEV_DEFAULT_SIZE + MAGLEV_CHUNK - 1) / MAGLEV_CHUNK)
#define CT_DEFAULT_SIZE 1048576
#define UDP_DEFAULT_TIMEOUT_NS (30ULL * 1000 * 1000 * 1000)
/* SYN flood guard: SYNs per CPU per window that still open entries. */
#define SYN_FLOOD_DEFAULT_RATE 125000
#define SYN_WINDOW_NS (1000ULL * 1000 * 1000)
#define SYN_CLOCK_EVERY 64 /* a power of two */

/* vip_meta.flags */
#define VIP_F_QUIC (1U << 0)

/* backend.mode */
#define BE_MODE_NONE 0
#define BE_MODE_LOCAL 1
#define BE_MODE_DSR_L2 2
#define BE_MODE_IPIP 3
#define BE_MODE_GUE 4

/* backend.flags */
#define BE_F_DOWN (1U << 0)
#define BE_F_V6 (1U << 1)

/* Ethernet and IP numbers, spelled out so no libc header is needed. */
#define ETH_HDR_LEN 14
#define VLAN_HDR_LEN 4
#define ETHTYPE_IPV4 0x0800
#define ETHTYPE_IPV6 0x86DD
#define ETHTYPE_VLAN 0x8100
#define ETHTYPE_QINQ 0x88A8

#define IPPROTO_ICMP_ 1
#define IPPROTO_IPIP_ 4
#define IPPROTO_TCP_ 6
#define IPPROTO_UDP_ 17
#define IPPROTO_IPV6_ 41
#define IPPROTO_ICMPV6_ 58
#define IPV6_NH_HOPOPTS 0
#define IPV6_NH_ROUTING 43
#define IPV6_NH_FRAGMENT 44
#define IPV6_NH_DSTOPTS 60

/* IPv4 frag_off: MF flag and the 13-bit offset (host order). */
#define IPV4_MF_OFFSET_MASK 0x3FFF

/*
 * Encapsulation (BE_MODE_IPIP and BE_MODE_GUE, see encap in xdp_lb.c).
 * Outer header sizes, the outer TTL / hop limit, and the default L3 MTU
 * of the path to the backends that an encapsulated packet must fit in.
 */
#define IPV4_HDR_LEN 20
#define IPV6_HDR_LEN 40
#define UDP_HDR_LEN 8
/* GUE: outer UDP source ports 49152..65535, 14 bits from the flow. */
#define GUE_SPORT_BASE 0xC000
#define GUE_DEFAULT_PORT 6080
#define ENCAP_TTL 64
#define ENCAP_DEFAULT_MTU 1500
#define IPV4_DF 0x4000
/*
 * The too-big answers (RFC 792 type 3 code 4, RFC 4443 type 2) quote the
 * offending packet's IP header and its first 8 payload bytes: the ports,
 * which is what the client's kernel needs to find the socket.
 */
#define ICMP_HDR_LEN 8
#define ICMP4_QUOTE (IPV4_HDR_LEN + 8)
#define ICMP6_QUOTE (IPV6_HDR_LEN + 8)
#define ICMP_DEST_UNREACH 3
#define ICMP_FRAG_NEEDED 4
#define ICMPV6_PKT_TOOBIG 2

/* Decap program (xdp_decap.c): allow-list CIDRs and local addresses. */
#define DECAP_MAX_ALLOW 1024
#define DECAP_MAX_LOCAL 256

/* errno value bpf_map_update_elem returns (negated) under BPF_NOEXIST. */
#define ERR_EEXIST 17

#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_ACK 0x10

/* QUIC (RFC 9000 section 17): first byte of every packet. */
#define QUIC_LONG_HEADER 0x80
#define QUIC_FIXED_BIT 0x40

/*
 * Flow hash constants (murmur3 x64 finalisers and lane constants). The
 * Go mirror in l4/flowhash must use the same numbers.
 */
#define FH_C1 0x87C37B91114253D5ULL
#define FH_C2 0x4CF5AD432745937FULL
#define FH_ADD 0x52DCE729ULL
#define FH_FMIX1 0xFF51AFD7ED558CCDULL
#define FH_FMIX2 0xC4CEB9FE1A85EC53ULL
#define FH_LEN 40

#endif
