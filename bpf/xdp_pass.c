//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The smallest XDP program. Two uses: the floor of the ns/packet
 * benchmarks (the cost of BPF_PROG_TEST_RUN itself), and the peer of a
 * veth that receives XDP_TX frames, which are only delivered when the
 * peer has an XDP program too.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("xdp")
int xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}
