package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/scimserver/scimserver/scimserver"
	"github.com/scimserver/scimserver/storage/bolt"
	"github.com/scimserver/scimserver/storage/postgres"
)

func newCompactCmd(c *config) *cobra.Command {
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "compact",
		Short: "Rewrite the data without freed space, so no trace of erased values survives in it",
		Long: `compact rewrites the data so that it holds nothing but live data.

On a bbolt data file it copies every record into a fresh file and replaces the data file with
it: no freed page, and so no trace of overwritten values, survives. The server must be stopped.
Anonymization already overwrites free pages as it runs; compact is for shrinking the file and
for a belt-and-braces clean copy.

On PostgreSQL it rewrites the tables that hold personal values (VACUUM FULL of records, index
entries and memberships), which is the only way to clear the bytes of old row versions from the
relation files, and then ends every pending erasure (each user's scrubbedAt is recorded).
Servers may keep running, but each table is locked while it is rewritten: requests wait, so run
it when the load is low. It first waits, up to --wait, for transactions older than the newest
erasure to end.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !c.onPostgres() {
				before, after, err := bolt.Compact(c.data)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "compacted %s: %d -> %d bytes\n", c.data, before, after)
				return nil
			}
			s, err := openStore(c, false)
			if err != nil {
				return err
			}
			defer s.Close()
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			before, after, err := s.(*postgres.Store).Compact(ctx, scimserver.ErasureCleared)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "compacted %s: %d -> %d bytes; no erasure is pending\n", c.dataName(), before, after)
			return nil
		},
	}
	cmd.Flags().DurationVar(&wait, "wait", 10*time.Minute, "on PostgreSQL, how long to wait for older transactions and the rewrite")
	return cmd
}
