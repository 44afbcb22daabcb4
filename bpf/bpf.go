// Package bpf holds the XDP programs of the L4 fast path (C sources in
// this directory: the balancer xdp_lb.c, the backends' decap program
// xdp_decap.c, the empty xdp_pass.c) and the Go bindings bpf2go generates
// from them. The generated *_bpfel.go and *_bpfel.o files are committed,
// so building Portcullis needs no clang; `make generate` (go generate ./bpf/)
// rebuilds them and TestGeneratedObjectsAreFresh fails when they are stale.
package bpf

// -O2: the verifier needs the loops and bounds clang folds away.
// -g: BTF, which map-in-map, bpf2go's -type output and spec.Variables use.
// Plain UAPI headers (-I the multiarch asm dir), no vmlinux.h.

//go:generate go tool bpf2go -target bpfel -cflags "-O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu" -type vip_key -type vip_meta -type vip_info -type backend -type flow_key -type ct_entry -type vip_counters -type backend_counters -type global_counters LB xdp_lb.c
//go:generate go tool bpf2go -target bpfel -cflags "-O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu" Pass xdp_pass.c
//go:generate go tool bpf2go -target bpfel -cflags "-O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu" -type decap_prefix -type decap_counters Decap xdp_decap.c
//go:generate go run ./internal/srchash/gen
