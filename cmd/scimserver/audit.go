package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/scimserver/scimserver/scimserver"
)

func newAuditCmd(c *config) *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Read the audit trail"}
	var tenant, format, out string
	export := &cobra.Command{
		Use:   "export",
		Short: "Write a tenant's audit trail, oldest first, as NDJSON or CSV",
		Long: `export writes every event of a tenant's audit trail, oldest first, to stdout or --out.
Events name the attributes a change touched, never their values. The data file is opened
read-only: stop the server, or point --data at a backup.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "ndjson" && format != "csv" {
				return usageError{fmt.Errorf("--format must be ndjson or csv")}
			}
			w := cmd.OutOrStdout()
			if out != "" && out != "-" {
				f, err := os.Create(out)
				if err != nil {
					return err
				}
				defer f.Close()
				w = f
			}
			s, err := openStore(c, true)
			if err != nil {
				if c.onPostgres() {
					return err
				}
				return fmt.Errorf("%w (audit export needs the server stopped, or a backup)", err)
			}
			defer s.Close()
			n, err := exportTrail(scimserver.New(s, scimserver.Options{}), tenant, format, w, progress(cmd.ErrOrStderr()))
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "exported %d events of tenant %s\n", n, tenant)
			if f, ok := w.(*os.File); ok && f != os.Stdout {
				return f.Sync()
			}
			return nil
		},
	}
	export.Flags().StringVar(&tenant, "tenant", scimserver.DefaultTenant, "tenant whose trail to export")
	export.Flags().StringVar(&format, "format", "ndjson", "ndjson or csv")
	export.Flags().StringVar(&out, "out", "", "file to write (default stdout)")
	cmd.AddCommand(export)
	return cmd
}

// progress returns a function that reports a running count on a terminal, and nothing
// otherwise (a redirected stderr should not fill with carriage returns).
func progress(w io.Writer) func(n int, done bool) {
	if !isTerminal(w) {
		return func(int, bool) {}
	}
	return func(n int, done bool) {
		if done || n%10000 == 0 {
			fmt.Fprintf(w, "\r%d events", n)
			if done {
				fmt.Fprintln(w)
			}
		}
	}
}

var csvHeader = []string{"seq", "time", "tenant", "actorId", "actorName", "operation", "resourceType", "resourceId", "attributes", "related", "outcome", "relatedType", "version"}

// exportTrail writes the trail oldest first, streaming from one read transaction.
func exportTrail(s *scimserver.Service, tenant, format string, w io.Writer, report func(int, bool)) (int, error) {
	var cw *csv.Writer
	enc := json.NewEncoder(w)
	if format == "csv" {
		cw = csv.NewWriter(w)
		if err := cw.Write(csvHeader); err != nil {
			return 0, err
		}
	}
	n := 0
	err := s.Events(context.Background(), tenant, 0, func(ev scimserver.Event) (bool, error) {
		var err error
		if cw != nil {
			err = cw.Write([]string{strconv.FormatUint(ev.Seq, 10), ev.Time.Format(time.RFC3339Nano), ev.Tenant, ev.ActorID, ev.ActorName,
				ev.Operation, ev.ResourceType, ev.ResourceID, strings.Join(ev.Attributes, " "), ev.Related, ev.Outcome,
				ev.RelatedType, strconv.FormatUint(ev.Version, 10)})
		} else {
			err = enc.Encode(ev)
		}
		n++
		report(n, false)
		return err == nil, err
	})
	if err != nil {
		return n, err
	}
	report(n, true)
	if cw != nil {
		cw.Flush()
		return n, cw.Error()
	}
	return n, nil
}
