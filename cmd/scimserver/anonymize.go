package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/scimserver/scimserver/scimserver"
)

func newAnonymizeCmd(c *config) *cobra.Command {
	var tenant, user string
	var yes bool
	cmd := &cobra.Command{
		Use:   "anonymize --tenant T --user ID|USERNAME",
		Short: "Irreversibly erase a user's personal data, keeping the audit history",
		Long: `anonymize runs the same anonymization as POST /scim/v2/Users/{id}/.anonymize: in one
transaction the user is deactivated, every personal attribute is replaced with random characters
(or removed), the externalId, password, photos and manager are removed, and the user leaves
every group; then the data file's free pages are overwritten. It cannot be undone.

--user takes the user's id or, when no user has that id, its userName. The command shows what
will be erased and asks you to type the user's id to confirm, unless --yes is given. The server
must be stopped (use the SCIM action or POST /api/v1/users/{id}/anonymize while it runs).`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if user == "" {
				return usageError{fmt.Errorf("--user is required")}
			}
			return withService(c, func(ctx context.Context, s *scimserver.Service) error {
				e, err := s.DescribeErasure(ctx, tenant, user)
				if err != nil {
					return err
				}
				id := e.ID
				out := cmd.OutOrStdout()
				fmt.Fprint(out, describeErasure(e, tenant))
				if !yes && !confirm(cmd.InOrStdin(), out, id) {
					return fmt.Errorf("not confirmed; nothing was changed")
				}
				done, err := s.Anonymize(ctx, tenant, scimserver.Actor{ID: "cli", Name: "scimserver anonymize"}, id)
				if err != nil {
					return err
				}
				if !done.Changed {
					fmt.Fprintln(out, "the user was already anonymized; nothing changed")
					return nil
				}
				fmt.Fprintf(out, "user %s anonymized at %s\n", id, time.Now().UTC().Format(time.RFC3339))
				if !done.Scrubbed {
					fmt.Fprintln(out, "the data file's free pages could not be overwritten yet; that runs when the file is next opened")
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&tenant, "tenant", scimserver.DefaultTenant, "tenant of the user")
	cmd.Flags().StringVar(&user, "user", "", "id or userName of the user to anonymize")
	cmd.Flags().BoolVar(&yes, "yes", false, "do not ask for confirmation")
	return cmd
}

// describeErasure lists what anonymization will erase: attribute names with the current
// userName so the operator can recognise the person, and the group memberships that will end.
func describeErasure(e scimserver.Erasure, tenant string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "user %s (userName %q) of tenant %s\n", e.ID, e.UserName, tenant)
	if e.AnonymizedAt != nil {
		fmt.Fprintf(&b, "already anonymized at %s\n", e.AnonymizedAt.Format(time.RFC3339))
		return b.String()
	}
	fmt.Fprintf(&b, "will erase: %s\n", strings.Join(e.Attributes, ", "))
	fmt.Fprintf(&b, "will remove it from %d group(s), delete any password hash, and deactivate it\n", e.Groups)
	return b.String()
}

func confirm(in io.Reader, out io.Writer, id string) bool {
	fmt.Fprintf(out, "This cannot be undone. Type the user's id (%s) to confirm: ", id)
	line, _ := bufio.NewReader(in).ReadString('\n')
	return strings.TrimSpace(line) == id
}
