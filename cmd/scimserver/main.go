// Command scimserver runs the SCIM 2.0 provisioning endpoint and its operator commands.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

func main() {
	os.Exit(execute(newRoot(), os.Stderr))
}

// execute runs the command tree and returns the exit code: 0 success, 1 failure, 2 a mistake in
// the command line. Errors are printed as one line.
func execute(root *cobra.Command, stderr io.Writer) int {
	err := root.Execute()
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, "error:", strings.ReplaceAll(strings.TrimSpace(err.Error()), "\n", " "))
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
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

The server also reads three bearer tokens of the default tenant from the environment, each at
least 32 characters, each a different value (surrounding whitespace is ignored):
  SCIMSERVER_TOKEN           scope scim: for the identity provider (/scim/v2); when set, no
                             token is generated at first start
  SCIMSERVER_PLATFORM_TOKEN  scope platform: the platform API (/api/v1)
  SCIMSERVER_ADMIN_TOKEN     scope admin: the admin API (/api/v1/admin), /metrics and online
                             backups; the backup command reads it too
Each becomes a token named after its variable; a new value revokes the previous one. Unsetting a
variable leaves its token live: revoke it with "scimserver token revoke".

Exit codes: 0 success, 1 failure, 2 command-line mistake.`,
		Version:       currentBuild().Version,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return serve(cmd.Context(), cfg, cmd.ErrOrStderr())
		},
	}
	root.SetVersionTemplate(currentBuild().String())
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	cfg.bindServe(root)
	root.PersistentFlags().StringVar(&cfg.data, "data", env("SCIMSERVER_DATA", "./data/scimserver.db"),
		"path of the bbolt data file, or a postgres:// URL of a PostgreSQL database [SCIMSERVER_DATA]")
	root.AddCommand(newTenantCmd(cfg), newTokenCmd(cfg), newCheckCmd(cfg), newAuditCmd(cfg), newAnonymizeCmd(cfg), newCompactCmd(cfg), newMigrateCmd(),
		newBackupCmd(cfg), newRestoreCmd(cfg), newUsersCmd(cfg), newGroupsCmd(cfg), newStatsCmd(cfg), newVersionCmd(), newHealthzCmd(cfg))
	root.SetHelpCommand(newHelpCmd())
	root.CompletionOptions.DisableDefaultCmd = true
	root.AddCommand(newCompletionCmd())
	refuseUnknownCommands(root)
	return root
}

// refuseUnknownCommands makes every command that has subcommands answer an unknown one (or any
// other argument) with a one-line usage error and cobra's suggestions, instead of printing help
// and exiting 0; such a command given alone prints its help.
func refuseUnknownCommands(cmd *cobra.Command) {
	if !cmd.HasSubCommands() {
		return
	}
	cmd.SuggestionsMinimumDistance = 2
	cmd.Args = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return nil
		}
		return unknownCommand(cmd, args[0])
	}
	if !cmd.Runnable() {
		cmd.RunE = func(cmd *cobra.Command, args []string) error { return cmd.Help() }
	}
	for _, sub := range cmd.Commands() {
		refuseUnknownCommands(sub)
	}
}

// unknownCommand is the usage error for name, which is no subcommand of cmd.
func unknownCommand(cmd *cobra.Command, name string) error {
	msg := fmt.Sprintf("unknown command %q for %q", name, cmd.CommandPath())
	if s := cmd.SuggestionsFor(name); len(s) > 0 {
		msg += fmt.Sprintf("; did you mean %q?", s[0])
	} else {
		msg += fmt.Sprintf(" (see %s --help)", cmd.CommandPath())
	}
	return usageError{errors.New(msg)}
}

// newHelpCmd is cobra's help command, except that an unknown topic is a usage error.
func newHelpCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "help [command]",
		Short: "Help about any command",
		RunE: func(cmd *cobra.Command, args []string) error {
			target, rest, err := cmd.Root().Find(args)
			if err != nil {
				return usageError{err}
			}
			if len(rest) > 0 {
				return unknownCommand(target, rest[0])
			}
			return target.Help()
		},
	}
}

// newCompletionCmd prints a shell completion script (cobra's own command, built here so that its
// subcommands write to the command's output and refuse unknown shells like every command).
func newCompletionCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "completion",
		Short: "Print a shell completion script: bash, zsh, fish or powershell",
		Long: `completion prints a completion script for the shell, e.g.
  source <(scimserver completion bash)`,
	}
	for name, gen := range map[string]func(root *cobra.Command, w io.Writer) error{
		"bash":       func(root *cobra.Command, w io.Writer) error { return root.GenBashCompletionV2(w, true) },
		"zsh":        func(root *cobra.Command, w io.Writer) error { return root.GenZshCompletion(w) },
		"fish":       func(root *cobra.Command, w io.Writer) error { return root.GenFishCompletion(w, true) },
		"powershell": func(root *cobra.Command, w io.Writer) error { return root.GenPowerShellCompletionWithDesc(w) },
	} {
		cmd.AddCommand(&cobra.Command{
			Use:   name,
			Short: "Print the completion script for " + name,
			Args:  exactArgs(0),
			RunE:  func(cmd *cobra.Command, args []string) error { return gen(cmd.Root(), cmd.OutOrStdout()) },
		})
	}
	return cmd
}
