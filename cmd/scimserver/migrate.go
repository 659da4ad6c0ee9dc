package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/scimserver/scimserver/scimserver"
	"github.com/scimserver/scimserver/storage/postgres"
	"github.com/scimserver/scimserver/storage/transfer"
)

func newMigrateCmd() *cobra.Command {
	var from, to string
	var batch, samples int
	cmd := &cobra.Command{
		Use:   "migrate --from DATA --to DATA",
		Short: "Copy a deployment's data to another data location or engine (servers stopped)",
		Long: `migrate copies everything a data location holds into another: tenants, tokens (their hashes,
so existing tokens keep working), users and groups with their versions and times, memberships,
the platform's facts and campaign participations, and the whole audit trail with its order and
timestamps. Each location is what --data takes. It copies in batches (--batch records or
events per transaction) and reports progress on stderr; then it verifies the counts of every
collection and of the trail, and compares --samples records per collection spread over it.

Stop every server that writes to either location first. An interrupted migrate can be run
again with the same arguments: it puts records again and resumes the trail after the last
event the destination holds.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case from == "" || to == "":
				return usageError{errors.New("migrate needs --from and --to")}
			case from == to:
				return usageError{errors.New("--from and --to name the same data location")}
			case batch < 1 || samples < 1:
				return usageError{errors.New("--batch and --samples must be positive")}
			}
			src, err := openStore(&config{data: from}, true)
			if err != nil {
				return fmt.Errorf("--from: %w", err)
			}
			defer src.Close()
			dst, err := openStore(&config{data: to}, false)
			if err != nil {
				return fmt.Errorf("--to: %w", err)
			}
			defer dst.Close()
			opts := transfer.Options{Collections: scimserver.Collections(), Batch: batch, Samples: samples,
				Progress: progressPrinter(cmd.ErrOrStderr())}
			// Interrupted, it stops between two batches: what is committed stays, and a second
			// run resumes.
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			started := time.Now()
			if err := transfer.Copy(ctx, src, dst, opts); err != nil {
				return fmt.Errorf("migrate stopped (run it again to resume): %w", err)
			}
			// The servers started next plan their first queries on the copy's statistics.
			if pg, ok := dst.(*postgres.Store); ok {
				if err := pg.Analyze(ctx); err != nil {
					return fmt.Errorf("analyze the copy: %w", err)
				}
			}
			diffs, err := transfer.Verify(ctx, src, dst, opts)
			if err != nil {
				return fmt.Errorf("verifying the copy: %w", err)
			}
			if len(diffs) > 0 {
				return fmt.Errorf("the copy differs from its source: %s", strings.Join(diffs, "; "))
			}
			fmt.Fprintf(cmd.OutOrStdout(), "migrated and verified in %s\n", time.Since(started).Round(time.Millisecond))
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "the data location to copy from (a file path or a PostgreSQL URL)")
	cmd.Flags().StringVar(&to, "to", "", "the data location to copy into")
	cmd.Flags().IntVar(&batch, "batch", 1000, "records or events per transaction")
	cmd.Flags().IntVar(&samples, "samples", 1000, "records per collection whose documents are compared after the copy")
	return cmd
}

// progressPrinter reports a copy's progress at most once a second per collection, and its end.
func progressPrinter(w io.Writer) func(tenant, what string, done, total int) {
	last := map[string]time.Time{}
	return func(tenant, what string, done, total int) {
		key := tenant + "/" + what
		if done < total && time.Since(last[key]) < time.Second {
			return
		}
		last[key] = time.Now()
		fmt.Fprintf(w, "tenant %s: %s %d/%d\n", tenant, what, done, total)
	}
}
