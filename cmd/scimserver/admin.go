package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/scimserver/scimserver/scimserver"
)

// cliActor is who the audit trail names for changes made by operator commands.
var cliActor = scimserver.Actor{ID: "cli", Name: "scimserver command line"}

// withService opens the data for an operator command that changes it. The running server holds
// a data file's lock, so on bbolt these commands work on a stopped server; a PostgreSQL database
// is shared with running servers.
func withService(c *config, fn func(context.Context, *scimserver.Service) error) error {
	s, err := openStore(c, false)
	if err != nil {
		if c.onPostgres() {
			return err
		}
		return fmt.Errorf("%w (operator commands need the server stopped, or another data file)", err)
	}
	defer s.Close()
	return fn(context.Background(), scimserver.New(s, scimserver.Options{}))
}

func newTenantCmd(c *config) *cobra.Command {
	cmd := &cobra.Command{Use: "tenant", Short: "Create, list, disable and enable tenants (one organisation's instance each)"}
	var name string
	create := &cobra.Command{
		Use:   "create ID",
		Short: "Create a tenant; ID is 1-64 characters of a-z, 0-9, '-' and '_'",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !scimserver.ValidTenantID(args[0]) {
				return usageError{errors.New("a tenant id is 1 to 64 characters of a-z, 0-9, '-' and '_'")}
			}
			return withService(c, func(ctx context.Context, s *scimserver.Service) error {
				t, err := s.CreateTenant(ctx, cliActor, args[0], name)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "created tenant %s (%s)\n", t.ID, t.Name)
				return nil
			})
		},
	}
	create.Flags().StringVar(&name, "name", "", "display name")
	var asJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List tenants",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withService(c, func(ctx context.Context, s *scimserver.Service) error {
				ts, err := s.Tenants(ctx)
				if err != nil {
					return err
				}
				if asJSON {
					out := make([]scimserver.Tenant, 0, len(ts))
					for _, t := range ts {
						out = append(out, t.Tenant)
					}
					return writeJSONOut(cmd.OutOrStdout(), out)
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tNAME\tCREATED\tDISABLED")
				for _, t := range ts {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%v\n", t.ID, t.Name, t.Created.Format(time.RFC3339), t.Disabled)
				}
				return tw.Flush()
			})
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.AddCommand(create, list, newTenantStateCmd(c, true), newTenantStateCmd(c, false))
	return cmd
}

// newTenantStateCmd is tenant disable (disabled true) or tenant enable.
func newTenantStateCmd(c *config, disabled bool) *cobra.Command {
	verb, short := "enable", "Enable a disabled tenant: its tokens work again"
	if disabled {
		verb, short = "disable", "Disable a tenant: its tokens are refused (401) until it is enabled again"
	}
	return &cobra.Command{
		Use:   verb + " ID",
		Short: short,
		Long: short + `. The change is recorded in the tenant's audit
trail (tenant-` + verb + `). The server must be stopped; while it runs, use
POST /api/v1/admin/tenants/{id}/` + verb + ` with an admin token.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withService(c, func(ctx context.Context, s *scimserver.Service) error {
				t, err := s.SetTenantDisabled(ctx, cliActor, args[0], disabled)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "tenant %s is %sd\n", t.ID, verb)
				return nil
			})
		},
	}
}

func newTokenCmd(c *config) *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Create, list and revoke bearer tokens"}
	var tenant, name, scopes string
	var ttl time.Duration
	create := &cobra.Command{
		Use:   "create",
		Short: "Create a token and print its secret (shown only this once)",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			spec := scimserver.TokenSpec{Tenant: tenant, Name: name, Scopes: splitList(scopes)}
			if err := scimserver.CheckScopes(spec.Scopes); err != nil {
				return usageError{fmt.Errorf("--scope: %w", err)}
			}
			if ttl < 0 {
				return usageError{errors.New("--expires-in must be a positive duration, or 0 for no expiry")}
			}
			if ttl > 0 {
				exp := time.Now().Add(ttl).UTC()
				spec.Expires = &exp
			}
			return withService(c, func(ctx context.Context, s *scimserver.Service) error {
				t, secret, err := s.CreateToken(ctx, cliActor, spec)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "created token %s for tenant %s (scopes %s); its secret is shown only this once:\n", t.ID, t.Tenant, strings.Join(t.Scopes, ","))
				fmt.Fprintln(cmd.OutOrStdout(), secret)
				return nil
			})
		},
	}
	create.Flags().StringVar(&tenant, "tenant", scimserver.DefaultTenant, "tenant the token belongs to")
	create.Flags().StringVar(&name, "name", "", "a label to recognise the token by")
	create.Flags().StringVar(&scopes, "scope", scimserver.ScopeSCIM, "comma-separated scopes: scim (identity providers), platform (/api/v1), or admin alone (operators, server-wide)")
	create.Flags().DurationVar(&ttl, "expires-in", 0, "lifetime, e.g. 2160h; 0 means no expiry")
	var listTenant string
	var asJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List tokens (never their secrets)",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withService(c, func(ctx context.Context, s *scimserver.Service) error {
				ts, err := s.Tokens(ctx, listTenant)
				if err != nil {
					return err
				}
				for i := range ts {
					ts[i].Hash = ""
				}
				if asJSON {
					return writeJSONOut(cmd.OutOrStdout(), ts)
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tTENANT\tNAME\tSCOPES\tCREATED\tSTATE")
				for _, t := range ts {
					state := scimserver.TokenState(t, time.Now())
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Tenant, t.Name, strings.Join(t.Scopes, ","), t.Created.Format(time.RFC3339), state)
				}
				return tw.Flush()
			})
		},
	}
	list.Flags().StringVar(&listTenant, "tenant", "", "only this tenant's tokens")
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	var revokeTenant string
	revoke := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a token; it stops working on the next request",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withService(c, func(ctx context.Context, s *scimserver.Service) error {
				t, err := s.RevokeToken(ctx, cliActor, revokeTenant, args[0])
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "revoked token %s of tenant %s\n", t.ID, t.Tenant)
				return nil
			})
		},
	}
	revoke.Flags().StringVar(&revokeTenant, "tenant", "", "refuse unless the token belongs to this tenant")
	cmd.AddCommand(create, list, revoke)
	return cmd
}

func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.ExactArgs(n)(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func writeJSONOut(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
