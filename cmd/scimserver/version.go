package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// Release builds stamp these with
//
//	go build -ldflags "-X main.version=v1.2.3 -X main.buildTime=$(date -u +%Y-%m-%dT%H:%M:%SZ)" ./cmd/scimserver
//
// Without them the version is the module's (a tag for `go install …@vX.Y.Z`, "(devel)" for a
// build from a checkout) and the build time is not known.
var (
	version   string
	buildTime string
)

// build describes the running binary: what an operator quotes when reporting a problem.
type build struct {
	Version    string
	Revision   string // the VCS commit, with "-modified" when the tree had uncommitted changes
	CommitTime string
	BuildTime  string
	GoVersion  string
	Platform   string
}

func currentBuild() build {
	b := build{Version: "(unknown)", Revision: "unknown", CommitTime: "unknown", BuildTime: "unknown",
		GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if info, ok := debug.ReadBuildInfo(); ok {
		b.Version = info.Main.Version
		modified := false
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				b.Revision = s.Value
			case "vcs.time":
				b.CommitTime = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if modified && b.Revision != "unknown" {
			b.Revision += "-modified"
		}
	}
	if version != "" {
		b.Version = version
	}
	if buildTime != "" {
		b.BuildTime = buildTime
	}
	return b
}

func (b build) String() string {
	var s strings.Builder
	fmt.Fprintf(&s, "scimserver %s\n", b.Version)
	fmt.Fprintf(&s, "  revision  %s\n", b.Revision)
	fmt.Fprintf(&s, "  committed %s\n", b.CommitTime)
	fmt.Fprintf(&s, "  built     %s\n", b.BuildTime)
	fmt.Fprintf(&s, "  go        %s %s\n", b.GoVersion, b.Platform)
	return s.String()
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, VCS revision, commit and build time (the same as --version)",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := fmt.Fprint(cmd.OutOrStdout(), currentBuild())
			return err
		},
	}
}
