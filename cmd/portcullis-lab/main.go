//go:build linux

// Command portcullis-lab runs the configs/ha-pair HA topology on this
// machine in network namespaces (`make lab`): a client, LB nodes lb-a and
// lb-b running the real daemon, three DSR backends, a witness, a bridge,
// and a link from this machine to the bridge for the dashboards. Root
// only. See docs/lab.md and internal/halab.
//
//	portcullis-lab up [-bin bin/portcullis]   build and start it in the background, print the URLs
//	portcullis-lab failover [-for 5s]         crash the VIP owner, show the client's view, bring it back
//	portcullis-lab status                     what runs, and each node's view of the cluster
//	portcullis-lab down                       stop and remove everything (safe to repeat)
package main

import (
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"syscall"
	"time"

	"github.com/portcullis-lb/portcullis/internal/halab"
)

func usage() {
	fmt.Fprintf(os.Stderr, `usage: portcullis-lab COMMAND [flags]

  up        build the HA lab in namespaces, start it in the background, print the URLs
  failover  crash the VIP owner (link down + kill -9), show the client's view, bring it back
  status    what runs, and each node's view of the cluster
  down      stop the lab and remove its namespaces, links and processes (safe to repeat)

flags (every command): -state DIR (%s) -prefix P (%s)
up: -bin FILE (bin/portcullis) -repo DIR (found from here) -xdp native|generic -host-addr CIDR|none (%s)
failover: -for D (5s): how long the client probes after the crash
`, halab.DefaultStateDir, halab.DefaultPrefix, halab.DefaultHostAddr)
	os.Exit(2)
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	cmd := os.Args[1]
	fs := flag.NewFlagSet(cmd, flag.ExitOnError)
	fs.Usage = usage
	var o halab.Options
	fs.StringVar(&o.StateDir, "state", halab.DefaultStateDir, "state folder")
	fs.StringVar(&o.Prefix, "prefix", halab.DefaultPrefix, "namespace name prefix")
	fs.StringVar(&o.Bin, "bin", "", "portcullis binary (default REPO/bin/portcullis)")
	fs.StringVar(&o.Repo, "repo", "", "repository root (default: found from the working folder)")
	fs.StringVar(&o.XDPMode, "xdp", "native", "XDP mode of the nodes: native or generic")
	hostAddr := fs.String("host-addr", halab.DefaultHostAddr.String(), "this machine's address on the lab bridge, or none")
	window := fs.Duration("for", 5*time.Second, "failover: probing time after the crash")
	fs.Parse(os.Args[2:])
	if *hostAddr != "none" && *hostAddr != "" {
		p, err := netip.ParsePrefix(*hostAddr)
		if err != nil {
			fatal(fmt.Errorf("-host-addr: %w", err))
		}
		o.HostAddr = p
	}
	var err error
	switch cmd {
	case "up":
		err = halab.Up(o)
	case "failover":
		err = halab.Failover(o, *window)
	case "status":
		err = halab.Status(o)
	case "down":
		err = halab.Down(o)
	case "serve": // the supervisor, started by up
		// fd 3 is inherited without close-on-exec: set it, or the lab's
		// processes would hold the pipe open and up would never see EOF.
		if err := syscall.SetNonblock(3, false); err != nil {
			fatal(errors.New("serve is started by up"))
		}
		syscall.CloseOnExec(3)
		ready := os.NewFile(3, "ready")
		err = halab.Serve(o, ready)
	default:
		usage()
	}
	if err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintf(os.Stderr, "portcullis-lab: %v\n", err)
	os.Exit(1)
}
