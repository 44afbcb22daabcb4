// Package buildinfo holds what the linker stamps into the binary.
package buildinfo

import "runtime/debug"

// Set with -ldflags "-X github.com/portcullis-lb/portcullis/internal/buildinfo.Version=..."
var (
	Version = "dev"
	Commit  = ""
)

// GetCommit returns the stamped commit, or the VCS revision Go recorded.
func GetCommit() string {
	if Commit != "" {
		return Commit
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return "unknown"
}
