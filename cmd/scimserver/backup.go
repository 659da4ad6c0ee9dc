package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/scimserver/scimserver/scimserver"
	"github.com/scimserver/scimserver/storage/bolt"
)

// backupOnPostgres says how a PostgreSQL deployment is backed up and restored instead.
const backupOnPostgres = "back it up and restore it with PostgreSQL's tools: pg_dump and pg_restore, or continuous archiving with point-in-time recovery (see README, Running on PostgreSQL)"

func newBackupCmd(c *config) *cobra.Command {
	var out, url, token string
	var force, verify bool
	cmd := &cobra.Command{
		Use:   "backup --out FILE [--url URL --token ADMIN_TOKEN]",
		Short: "Write a consistent snapshot of the data file, from a running server or a stopped one",
		Long: `backup writes a consistent snapshot of the whole data file (every tenant, token, user, group
and audit trail as of one moment) to --out.

With --url it asks a running server for the snapshot (GET /api/v1/admin/backup, with an
admin-scope token from --token or SCIMSERVER_ADMIN_TOKEN); the server keeps taking writes
meanwhile. Without --url it reads the --data file of a stopped server.

The snapshot goes to FILE.tmp, is synced to disk, checked against its SHA-256 (and, unless
--verify=false, opened and checked like the check command), and only then renamed to FILE. The
SHA-256 and size are printed. Progress is shown when stderr is a terminal.

A snapshot is a copy of the data file's pages: it holds personal data, including values
anonymized after it was taken, for as long as it exists. Store it encrypted, keep it no longer
than your retention policy allows, and delete it to complete an erasure.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := c.fileOnly("backup", backupOnPostgres); err != nil {
				return err
			}
			if out == "" {
				return usageError{errors.New("--out is required")}
			}
			if url == "" && cmd.Flags().Changed("token") {
				return usageError{errors.New("--token goes with --url")}
			}
			if url != "" && token == "" {
				return usageError{errors.New("--url needs an admin-scope token: --token or SCIMSERVER_ADMIN_TOKEN")}
			}
			endpoint, err := backupURL(url)
			if err != nil {
				return usageError{err}
			}
			if _, err := os.Stat(out); err == nil && !force {
				return fmt.Errorf("%s exists (use --force to replace it)", out)
			}
			tmp := out + ".tmp"
			f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
			if err != nil {
				return err
			}
			keep := false
			defer func() {
				f.Close()
				if !keep {
					os.Remove(tmp)
				}
			}()
			sum := sha256.New()
			bar := newByteProgress(cmd.ErrOrStderr())
			var n int64
			if url != "" {
				n, err = backupFromServer(cmd.Context(), endpoint, token, f, sum, bar)
			} else {
				n, err = backupFromFile(c.data, f, sum, bar)
			}
			bar.done()
			if err != nil {
				return err
			}
			if err := f.Sync(); err != nil {
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			if verify {
				problems, err := bolt.VerifySnapshot(tmp, scimserver.Collections())
				if err != nil {
					return fmt.Errorf("the snapshot cannot be read back: %w", err)
				}
				for _, p := range problems {
					fmt.Fprintln(cmd.ErrOrStderr(), p)
				}
				if len(problems) > 0 {
					return fmt.Errorf("the snapshot is not consistent (%d problem(s)); nothing was kept", len(problems))
				}
			}
			if err := os.Rename(tmp, out); err != nil {
				return err
			}
			keep = true
			if err := bolt.SyncDir(out); err != nil {
				return err
			}
			checked := ""
			if verify {
				checked = ", checked"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: %d bytes, sha256 %s%s\n", out, n, hex.EncodeToString(sum.Sum(nil)), checked)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&out, "out", "", "file to write the snapshot to (required)")
	f.StringVar(&url, "url", "", "a running server's root URL, e.g. https://scim.example.com, or its SCIM base URL (default: read --data of a stopped server)")
	f.StringVar(&token, "token", env("SCIMSERVER_ADMIN_TOKEN", ""), "admin-scope bearer token for --url [SCIMSERVER_ADMIN_TOKEN]")
	f.BoolVar(&force, "force", false, "replace --out if it exists")
	f.BoolVar(&verify, "verify", true, "open the snapshot and check it (pages and indexes) before keeping it")
	return cmd
}

// backupFromFile snapshots the data file of a stopped server, opened read-only.
func backupFromFile(data string, w io.Writer, sum hash.Hash, bar *byteProgress) (int64, error) {
	s, err := bolt.Open(data, bolt.Options{Collections: scimserver.Collections(), ReadOnly: true, Timeout: 2 * time.Second})
	if err != nil {
		return 0, fmt.Errorf("%w (without --url, backup needs the server stopped; with a running server use --url)", err)
	}
	defer s.Close()
	return s.BackupSized(func(size int64) io.Writer {
		bar.total = size
		return io.MultiWriter(w, sum, bar)
	})
}

// backupURL is the backup endpoint of the server at base, which may be the server's root URL,
// its SCIM base URL (the one an operator knows from the identity provider) or the endpoint
// itself; "" stays "".
func backupURL(base string) (string, error) {
	if base == "" {
		return "", nil
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", errors.New("--url must be the server's root URL, e.g. https://scim.example.com, or its SCIM base URL")
	}
	const endpoint, scimBase = "/api/v1/admin/backup", "/scim/v2"
	p := strings.TrimRight(u.Path, "/")
	if !strings.HasSuffix(p, endpoint) {
		if strings.HasSuffix(strings.ToLower(p), scimBase) {
			p = p[:len(p)-len(scimBase)]
		}
		p += endpoint
	}
	u.Path, u.RawPath = p, ""
	return u.String(), nil
}

// backupFromServer downloads a snapshot from a running server's admin API at u, and checks that
// it arrived whole: as many bytes as announced, with the announced SHA-256.
func backupFromServer(ctx context.Context, u, token string, w io.Writer, sum hash.Hash, bar *byteProgress) (int64, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s: %s%s", u, res.Status, errorDetail(res.Body))
	}
	bar.total = res.ContentLength
	n, err := io.Copy(io.MultiWriter(w, sum, bar), res.Body)
	if err != nil {
		return n, fmt.Errorf("download interrupted after %d bytes: %w", n, err)
	}
	if res.ContentLength >= 0 && n != res.ContentLength {
		return n, fmt.Errorf("download incomplete: %d of %d bytes", n, res.ContentLength)
	}
	if want := res.Header.Get("X-Backup-SHA256"); want != "" && !strings.EqualFold(want, hex.EncodeToString(sum.Sum(nil))) {
		return n, fmt.Errorf("the download does not match the server's SHA-256 (%s)", want)
	}
	return n, nil
}

// errorDetail extracts the detail of a SCIM error body, for a message.
func errorDetail(r io.Reader) string {
	var body struct {
		Detail string `json:"detail"`
	}
	if err := json.NewDecoder(io.LimitReader(r, 64<<10)).Decode(&body); err != nil || body.Detail == "" {
		return ""
	}
	return ": " + body.Detail
}

func newRestoreCmd(c *config) *cobra.Command {
	var from string
	var force bool
	cmd := &cobra.Command{
		Use:   "restore --from FILE [--force]",
		Short: "Replace the data file (server stopped) with a snapshot taken by backup",
		Long: `restore checks the snapshot --from (bbolt's page check, then every index against the
records, as the check command does) and, if it is consistent, copies it into place as the --data
file: to --data.restore.tmp first, synced to disk and checked again, then renamed over --data.

An existing data file is replaced only with --force, and never while a server is running on it.

Everything after the snapshot is lost with the replaced file: users and groups changed since,
audit events recorded since, tokens created since. Tokens revoked and users anonymized since the
snapshot are live and identifiable again: revoke and anonymize them again before the server
takes traffic.

When the replaced file is readable and its audit trail had gone further than the snapshot's,
restore marks that in the restored trail: the change feed then answers 410 (resync) to the
cursors the restore took back, new changes take cursors after them, and consumers behind the
snapshot, webhooks among them, read a change "restored" naming the cursors taken back.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := c.fileOnly("restore", backupOnPostgres); err != nil {
				return err
			}
			if from == "" {
				return usageError{errors.New("--from is required")}
			}
			if _, err := os.Stat(c.data); err == nil && !force {
				return fmt.Errorf("%s exists; use --force to replace it with the snapshot", c.data)
			}
			problems, err := bolt.VerifySnapshot(from, scimserver.Collections())
			if err != nil {
				return fmt.Errorf("the snapshot cannot be read: %w", err)
			}
			for _, p := range problems {
				fmt.Fprintln(cmd.OutOrStdout(), p)
			}
			if len(problems) > 0 {
				return fmt.Errorf("%s is not consistent (%d problem(s)); nothing was restored", from, len(problems))
			}
			var ends map[string]uint64
			var marked []scimserver.Restored
			n, err := bolt.Restore(from, c.data, force, scimserver.Collections(), bolt.RestoreHooks{
				Old: func(path string) error {
					var err error
					if ends, err = trailEnds(path); err != nil {
						fmt.Fprintf(cmd.ErrOrStderr(), "note: the audit trail of the replaced data file cannot be read (%v): consumers of the change feed who read past the snapshot will not be told to resync\n", err)
					}
					return nil
				},
				New: func(path string) error {
					var err error
					marked, err = markRestored(path, ends)
					return err
				},
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "restored %s into %s: %d bytes, checked\n", from, c.data, n)
			for _, m := range marked {
				if m.Missing {
					fmt.Fprintf(cmd.OutOrStdout(), "tenant %s is not in the snapshot (its trail had reached %d): tell the consumers of its change feed and its webhook receivers to resync; created again, its cursors would start over\n",
						m.Tenant, m.To)
					continue
				}
				fmt.Fprintf(cmd.OutOrStdout(), "tenant %s: changes %d to %d of the replaced file are not in the snapshot; the change feed answers their cursors with 410 (resync), and new changes follow from %d; webhooks deliver a change \"restored\" naming them\n",
					m.Tenant, m.From+1, m.To, m.To+1)
			}
			fmt.Fprintln(cmd.ErrOrStderr(), "note: tokens revoked and users anonymized after the snapshot was taken are live and identifiable again; revoke and anonymize them again before starting the server")
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "snapshot file written by backup (required)")
	cmd.Flags().BoolVar(&force, "force", false, "replace an existing data file")
	return cmd
}

// trailEnds reads each tenant's newest audit cursor from the data file at path.
func trailEnds(path string) (map[string]uint64, error) {
	store, err := bolt.Open(path, bolt.Options{Collections: scimserver.Collections(), ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return nil, err
	}
	defer store.Close()
	return scimserver.New(store, scimserver.Options{}).TrailEnds(context.Background())
}

// markRestored marks, in the restored data file at path, where each tenant's trail had gone in
// the file it replaces (ends), so that the change feed tells consumers past the snapshot.
func markRestored(path string, ends map[string]uint64) ([]scimserver.Restored, error) {
	if len(ends) == 0 {
		return nil, nil
	}
	store, err := bolt.Open(path, bolt.Options{Collections: scimserver.Collections(), Timeout: time.Second, ErasureCleared: scimserver.ErasureCleared})
	if err != nil {
		return nil, err
	}
	marked, err := scimserver.New(store, scimserver.Options{}).MarkRestored(context.Background(), ends)
	if cerr := store.Close(); err == nil {
		err = cerr
	}
	return marked, err
}

// byteProgress reports bytes copied on a terminal, at most ten times a second; it prints nothing
// when stderr is not a terminal.
type byteProgress struct {
	w     io.Writer
	on    bool
	total int64
	n     int64
	last  time.Time
}

func newByteProgress(w io.Writer) *byteProgress {
	return &byteProgress{w: w, on: isTerminal(w), total: -1}
}

func (p *byteProgress) Write(b []byte) (int, error) {
	p.n += int64(len(b))
	if p.on && time.Since(p.last) >= 100*time.Millisecond {
		p.last = time.Now()
		p.print()
	}
	return len(b), nil
}

func (p *byteProgress) print() {
	if p.total > 0 {
		fmt.Fprintf(p.w, "\r%s of %s (%d%%)  ", humanBytes(p.n), humanBytes(p.total), p.n*100/p.total)
	} else {
		fmt.Fprintf(p.w, "\r%s  ", humanBytes(p.n))
	}
}

func (p *byteProgress) done() {
	if p.on && p.n > 0 {
		p.print()
		fmt.Fprintln(p.w)
	}
}

// humanBytes writes n in the largest binary unit that keeps it at 1 or more: 44.0 KiB, 16.0 MiB.
func humanBytes(n int64) string {
	units := []string{"bytes", "KiB", "MiB", "GiB", "TiB"}
	v, i := float64(n), 0
	for ; v >= 1024 && i < len(units)-1; i++ {
		v /= 1024
	}
	if i == 0 {
		return fmt.Sprintf("%d bytes", n)
	}
	return fmt.Sprintf("%.1f %s", v, units[i])
}
