// Package netlab builds network-namespace topologies for tests (tier 3 in
// DESIGN.md) and for `make lab`: a bridge, and hosts (client, load-balancer
// nodes, backends) each in its own network namespace, joined to the bridge
// by veth pairs, with fixed MACs and addresses; real processes and
// in-process Go servers and clients running inside them; everything removed
// afterwards, even when the test fails, panics or the binary is killed.
//
//	lab := netlab.New(t, netlab.Options{})
//	client := lab.AddHost("client", netip.MustParsePrefix("10.0.0.1/24"))
//	lb := lab.AddHost("lb1", netip.MustParsePrefix("10.0.0.2/24"))
//	be := lab.AddHost("be1", netip.MustParsePrefix("10.0.0.11/24"))
//	be.MakeDSRBackend(vip)
//	ln, _ := be.Listen("tcp", "0.0.0.0:80")   // serves be1's namespace
//	go http.Serve(ln, handler)
//	lb.Start(t, daemonPath, "run", "-config", cfg)
//	resp, _ := client.HTTPClient().Get("http://" + vip.String() + "/")
//
// # What it builds
//
// Lab.Name is the prefix (default "pc") plus 6 random hex digits. The
// bridge "br0" lives in namespace "<lab>-bridge"; host "x" is namespace
// "<lab>-x" with "eth0" inside, whose peer "p<index>-x" is a port of br0.
// The namespaces are named (bind mounts in /run/netns, as `ip netns add`
// makes them), so while a lab exists you can inspect it with
// `ip netns exec <lab>-x ...`. No interface is created in the caller's own
// namespace, so labs never clash with each other or with the machine.
// MACs are derived from the host index only (eth0 02:50:43:00:ii:ii, peer
// 02:50:43:01:ii:ii, bridge 02:50:43:ff:00:00): each lab is its own layer-2
// segment, so they are the same in every run.
//
// # Sysctls
//
//   - bridge namespace: net.bridge.bridge-nf-call-{iptables,ip6tables,
//     arptables}=0 when those keys exist (br_netfilter loaded), so bridged
//     frames do not go through netfilter; IPv6 disabled for the namespace's
//     own interfaces (no RS/MLD noise in captures; bridging of IPv6 frames
//     is unaffected). Multicast snooping is off on br0, so neighbour
//     solicitations are flooded without an MLD querier.
//   - every host: net.ipv6.conf.{all,default,eth0}.accept_dad=0 and IPv6
//     addresses added with IFA_F_NODAD, so they are usable at once instead
//     of "tentative" for about a second;
//     net.ipv4.conf.{all,default,eth0}.rp_filter=0 because a new namespace
//     copies IPv4 settings from the initial namespace (whatever the machine
//     has) and reverse-path filtering must not drop DSR or VIP traffic.
//   - DSR backends (MakeDSRBackend): the VIP on lo, arp_ignore=1 and
//     arp_announce=2 on all and eth0 so that the backend neither answers
//     ARP for the VIP nor uses it as an ARP source; see that method.
//
// # The one-thread-per-Do rule
//
// A namespace belongs to an OS thread, not to a goroutine. Host.Do runs a
// function on a fresh goroutine locked to its thread, switches that thread
// into the namespace, and switches it back (or, if that fails, lets the
// thread die) afterwards. Only that goroutine, while the function runs, is
// in the namespace; goroutines it starts are not. What is created there
// stays there: sockets (Listen, ListenPacket, Dial, HTTPClient's dialer),
// bpf_links (attached by ifindex) and forked processes (Run, Start) keep
// the namespace they were created in, so a listener made in Do is served
// afterwards from any goroutine. Do not call netns.Set yourself outside Do:
// on a thread that is not locked, and then restored or thrown away, the Go
// scheduler would run unrelated goroutines in the lab's namespace.
//
// # Processes
//
// Run and Start fork from a thread inside the namespace (no `ip netns exec`
// and no nsenter needed, and it works without /run/netns). Unlike
// `ip netns exec` they do not remount /sys, so /sys/class/net shows the
// caller's interfaces; netlink and ioctl based tools see the namespace.
// Each process is its own process group, is stopped with SIGTERM then
// SIGKILL at cleanup, and its output goes to a file under t.TempDir() that
// is logged when the test failed. Children get SIGKILL if the test binary
// dies (Pdeathsig). Pdeathsig fires when the forking *thread* exits, and Go
// destroys any thread on which a goroutine exits while locked (which
// namespace code does routinely), so all forks go through one goroutine
// locked for the life of the process to its own thread.
//
// # Cleanup
//
// Lab.Close (registered with t.Cleanup by New) stops processes, closes
// listeners and XDP attachments, deletes the veths and the bridge and
// removes the namespaces. If the binary dies before that, Cleanup(prefix)
// (called automatically by the next New of that prefix) removes the
// leftovers of dead labs: a lab is alive while its creator holds the flock
// on /run/netlab/<lab>.lock, so labs of other running test binaries are
// never touched.
//
// # XDP on veth
//
// Native-mode XDP_TX on a veth is only delivered if the peer has an XDP
// program: AttachXDPPass puts an XDP_PASS program (assembled in Go, no
// clang) on a host's bridge-side peer. Senders whose traffic crosses a
// native XDP program need TX checksum offload off: DisableTxOffload
// (`ethtool -K eth0 tx off`, by ioctl; no ethtool binary needed).
//
// Everything needs root; New skips the test otherwise.
package netlab
