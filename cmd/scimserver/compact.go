package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	bolt "go.etcd.io/bbolt"
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
			src, err := bolt.Open(c.data, 0o600, &bolt.Options{Timeout: 2 * time.Second})
			if err != nil {
				return fmt.Errorf("open %s: %w (compact needs the server stopped)", c.data, err)
			}
			defer src.Close()
			tmp := c.data + ".compact"
			_ = os.Remove(tmp)
			dst, err := bolt.Open(tmp, 0o600, nil)
			if err != nil {
				return err
			}
			if err := bolt.Compact(dst, src, 64<<20); err != nil {
				dst.Close()
				os.Remove(tmp)
				return fmt.Errorf("compact: %w", err)
			}
			before, after := fileSize(c.data), fileSize(tmp)
			if err := dst.Close(); err != nil {
				return err
			}
			if err := os.Rename(tmp, c.data); err != nil {
				return err
			}
			if err := syncDir(c.data); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "compacted %s: %d -> %d bytes\n", c.data, before, after)
			return nil
		},
	}
}

func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}
