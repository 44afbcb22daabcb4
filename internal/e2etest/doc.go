// Package e2etest holds the helpers the end-to-end test packages share:
// the real daemon in a netlab host with a readiness wait, its admin API
// (token, JSON, /metrics), bounded waits, a line-echo TCP server in a host
// and the XDP-support check that skips a test on machines without it.
package e2etest
