// Package packaging holds the Debian package of Portcullis: the nfpm
// description (nfpm.yaml), the systemd unit, the default config, the sysctl
// files and the maintainer scripts. `make deb` runs build-deb.sh, which
// builds the static binary and the .deb into dist/.
//
// The package has no Go code; its test builds the .deb as `make deb` does
// and checks what a node would get from it: files and modes, the unit's key
// lines, a config that validates, the control fields, and (as root) the
// postinst applying the sysctls in a scratch network namespace.
// docs/operations.md explains every choice.
package packaging
