// Command scimserver runs the SCIM 2.0 provisioning endpoint and its operator commands.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	if err := newRoot().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		var ue usageError
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// usageError marks mistakes in the command line (exit code 2) apart from failures (exit code 1).
type usageError struct{ error }

// env returns the environment variable's value or def.
func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}

func newRoot() *cobra.Command {
	cfg := defaultConfig()
	root := &cobra.Command{
		Use:   "scimserver",
		Short: "SCIM 2.0 provisioning endpoint for Okta, Microsoft Entra ID and any RFC 7644 client",
		Long: `scimserver serves SCIM 2.0 (RFC 7643, RFC 7644) Users and Groups from one bbolt data file.

With no subcommand it runs the server. Every flag has an environment variable (shown in
brackets); a flag given on the command line wins.

Exit codes: 0 success, 1 failure, 2 command-line mistake.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return serve(cmd.Context(), cfg, cmd.ErrOrStderr())
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	cfg.bindServe(root)
	root.PersistentFlags().StringVar(&cfg.data, "data", env("SCIMSERVER_DATA", "./data/scimserver.db"),
		"path of the bbolt data file [SCIMSERVER_DATA]")
	root.AddCommand(newTenantCmd(cfg), newTokenCmd(cfg), newCheckCmd(cfg), newAuditCmd(cfg), newAnonymizeCmd(cfg), newCompactCmd(cfg),
		newBackupCmd(cfg), newRestoreCmd(cfg), newUsersCmd(cfg), newGroupsCmd(cfg), newStatsCmd(cfg))
	return root
}
