// Package halab is `make lab` (issue 9): the HA topology of
// configs/ha-pair running for real on one Linux machine, in network
// namespaces, for a newcomer to curl, open the dashboards of and crash.
//
// It builds the topology with the helpers the namespace tests use
// (cluster/e2e.Build on an internal/netlab lab: client, LB nodes a and b,
// backends be1 and be2, witness; e2e.Lab.AddBackend adds be3), renders
// configs/ha-pair/node-{a,b}.yaml for the lab's addresses with
// vagrant/provision/render-config.sh (the script the Vagrant LB nodes use),
// prepares each backend with vagrant/provision/dsr-backend.sh (the script
// the Vagrant backends use), joins the machine to the lab's bridge
// (netlab.Lab.AddCallerLink) so the dashboards open in a host browser, and
// starts the real daemon on both nodes.
//
// A netlab lab lives as long as the process that made it (its processes
// get SIGKILL when that process dies, and its lock file says it is alive),
// so `up` starts a supervisor (`portcullis-lab serve`, in its own session)
// that builds the lab and holds it, and returns once the pair has settled.
// The other commands talk to the supervisor over a unix socket in the
// state folder: `failover` crashes the VIP owner inside the supervisor and
// streams the client's view; `down` asks it to close the lab, kills it if
// it does not, and then runs netlab.Cleanup on the prefix, so it also
// clears what a killed supervisor or a failed `up` left. See docs/lab.md.
package halab
