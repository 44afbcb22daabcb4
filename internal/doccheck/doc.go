// Package doccheck holds tests that keep the documentation true to the
// code: every Prometheus metric name the Markdown files cite
// (portcullis_...) must be one the Go sources define, and the nftables
// example of docs/operations.md must be accepted by nft.
package doccheck
