package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

// errInconsistent makes check exit 1 after printing its report.
var errInconsistent = fmt.Errorf("the data file is not consistent")

func newCheckCmd(c *config) *cobra.Command {
	return &cobra.Command{
		Use:   "check",
		Short: "Verify a data file: bbolt page consistency and every index against the data",
		Long: `check opens the data file read-only (the server must be stopped, or point --data at a copy;
after a crash it first writes back the commits the file's commit log holds)
and verifies bbolt's page structure, then that every index (userName, externalId, emails, group
displayName and externalId, members and their reverse index) agrees with the records, that the
audit events a record's header lists are in the trail and about that record, and the counts.
On a PostgreSQL database (--data postgres://...) it checks, in one snapshot and with
servers running, every index's entries against the documents, the counts, and each trail's
sequence. It prints one line per problem and exits 1 if there is any, 0 if the file is consistent.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := openStore(c, true)
			if err != nil {
				if c.onPostgres() {
					return err
				}
				return fmt.Errorf("%w (check needs the server stopped, or a copy of the file)", err)
			}
			defer s.Close()
			problems, err := checkStore(s)
			if err != nil {
				return err
			}
			for _, p := range problems {
				fmt.Fprintln(cmd.OutOrStdout(), p)
			}
			if len(problems) > 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "%d problem(s) found in %s\n", len(problems), c.dataName())
				return errInconsistent
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s is consistent\n", c.dataName())
			return nil
		},
	}
}
