package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/scimserver/scimserver/storage/bolt"
)

func newCompactCmd(c *config) *cobra.Command {
	return &cobra.Command{
		Use:   "compact",
		Short: "Rewrite the data file without its free pages (server stopped)",
		Long: `compact copies every record into a fresh file and replaces the data file with it, so the
file holds nothing but live data: no freed page, and so no trace of overwritten values, survives.
The server must be stopped. Anonymization already overwrites free pages as it runs; compact is
for shrinking the file and for a belt-and-braces clean copy.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := c.fileOnly("compact", "PostgreSQL reclaims space with VACUUM (VACUUM FULL to give it back to the file system)"); err != nil {
				return err
			}
			before, after, err := bolt.Compact(c.data)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "compacted %s: %d -> %d bytes\n", c.data, before, after)
			return nil
		},
	}
}
