package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/scimserver/scimserver/scimserver"
)

// Read-only views of a stopped server's data file: users, groups and figures.

// withReadOnlyStore opens the data file read-only: the server must be stopped (it holds the
// file's lock), or --data must point at a copy or a backup.
func withReadOnlyStore(c *config, what string, fn func(*scimserver.Service, dataStore) error) error {
	s, err := openStore(c, true)
	if err != nil {
		if c.onPostgres() {
			return err
		}
		return fmt.Errorf("%w (%s needs the server stopped, or --data pointing at a copy or a backup)", err, what)
	}
	defer s.Close()
	return fn(scimserver.New(s, scimserver.Options{}), s)
}

func checkFormat(format string) error {
	if format != "table" && format != "json" {
		return usageError{errors.New("--format must be table or json")}
	}
	return nil
}

// resourceKind is what differs between the users and groups commands.
type resourceKind struct {
	plural, singular string
	// byName is the attribute show falls back to when no resource has the given id.
	byName   string
	examples []string
	kind     func(*scimserver.Service) *scimserver.Kind
	columns  []string
	row      func(map[string]any) []string
}

var userKind = resourceKind{plural: "users", singular: "user", byName: "userName", kind: (*scimserver.Service).Users,
	examples: []string{`userName eq "bjensen@example.com"`, `active eq false and emails.value ew "@example.com"`,
		`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "Sales"`},
	columns: []string{"ID", "USERNAME", "NAME", "ACTIVE", "EXTERNALID"},
	row: func(m map[string]any) []string {
		return []string{text(m["id"]), text(m["userName"]), personName(m), text(m["active"]), text(m["externalId"])}
	}}

var groupKind = resourceKind{plural: "groups", singular: "group", byName: "displayName", kind: (*scimserver.Service).Groups,
	examples: []string{`displayName sw "Sales"`, `members[value eq "<user id>"]`, `externalId pr`},
	columns:  []string{"ID", "DISPLAYNAME", "MEMBERS", "EXTERNALID"},
	row: func(m map[string]any) []string {
		members, _ := m["members"].([]any)
		return []string{text(m["id"]), text(m["displayName"]), strconv.Itoa(len(members)), text(m["externalId"])}
	}}

func newUsersCmd(c *config) *cobra.Command  { return newResourceCmd(c, userKind) }
func newGroupsCmd(c *config) *cobra.Command { return newResourceCmd(c, groupKind) }

func newResourceCmd(c *config, k resourceKind) *cobra.Command {
	cmd := &cobra.Command{Use: k.plural, Short: "List and show " + k.plural + " of a stopped server's data file"}
	var tenant, filter, format string
	var limit int
	list := &cobra.Command{
		Use:   "list",
		Short: "List " + k.plural + ", optionally those matching a SCIM filter",
		Long: `list prints the ` + k.plural + ` of a tenant, in the order GET /` + titled(k.plural) + ` returns them. --filter
takes the SCIM filter syntax of RFC 7644 (the server's own filter code evaluates it), e.g.
  --filter '` + strings.Join(k.examples, "'\n  --filter '") + `'
The data file is opened read-only: stop the server, or point --data at a backup.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			if limit < 0 {
				return usageError{errors.New("--limit must be 0 (no limit) or more")}
			}
			return withReadOnlyStore(c, k.plural+" list", func(s *scimserver.Service, store dataStore) error {
				ask := limit
				if ask > 0 {
					ask++ // one more, to tell whether there are more
				}
				rs, err := s.Find(context.Background(), tenant, k.kind(s), filter, ask, offlineBase)
				if err != nil {
					return queryError(err)
				}
				more := limit > 0 && len(rs) > limit
				if more {
					rs = rs[:limit]
				}
				if format == "json" {
					return writeJSONOut(cmd.OutOrStdout(), rs)
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, strings.Join(k.columns, "\t"))
				for _, m := range rs {
					fmt.Fprintln(tw, strings.Join(k.row(m), "\t"))
				}
				if err := tw.Flush(); err != nil {
					return err
				}
				if more {
					fmt.Fprintf(cmd.ErrOrStderr(), "showing the first %d %s; --limit 0 shows all\n", limit, k.plural)
				}
				return nil
			})
		},
	}
	list.Flags().StringVar(&filter, "filter", "", "SCIM filter, e.g. '"+k.examples[0]+"' (default: all)")
	list.Flags().IntVar(&limit, "limit", 100, "show at most this many; 0 for all")

	show := &cobra.Command{
		Use:   "show ID|" + strings.ToUpper(k.byName),
		Short: "Show one " + k.singular + " by id or " + k.byName,
		Long: `show prints one ` + k.singular + ` as GET /` + titled(k.plural) + `/{id} renders it (json), or as one
attribute path and value per line (table). The argument is the ` + k.singular + `'s id or, when no
` + k.singular + ` has that id, its ` + k.byName + ` (compared case-insensitively).`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			return withReadOnlyStore(c, k.plural+" show", func(s *scimserver.Service, store dataStore) error {
				found, err := k.find(s, tenant, args[0])
				if err != nil {
					return err
				}
				if format == "json" {
					return writeJSONOut(cmd.OutOrStdout(), found)
				}
				var rows [][2]string
				flatten("", found, &rows)
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				for _, r := range rows {
					fmt.Fprintf(tw, "%s\t%s\n", r[0], r[1])
				}
				return tw.Flush()
			})
		},
	}
	for _, sub := range []*cobra.Command{list, show} {
		sub.Flags().StringVar(&tenant, "tenant", scimserver.DefaultTenant, "tenant to read")
		sub.Flags().StringVar(&format, "format", "table", "table or json")
	}
	cmd.AddCommand(list, show)
	return cmd
}

// find returns the resource of tenant whose id is ref or, when none has that id, whose byName
// attribute is ref (compared as the server compares it).
func (k resourceKind) find(s *scimserver.Service, tenant, ref string) (map[string]any, error) {
	for _, attr := range []string{"id", k.byName} {
		rs, err := s.Find(context.Background(), tenant, k.kind(s), attr+" eq "+filterString(ref), 1, offlineBase)
		if err != nil {
			return nil, queryError(err)
		}
		if len(rs) > 0 {
			return rs[0], nil
		}
	}
	return nil, fmt.Errorf("no %s of tenant %s has the id or %s %q", k.singular, tenant, k.byName, ref)
}

func titled(s string) string { return strings.ToUpper(s[:1]) + s[1:] }

// offlineBase is the SCIM root that resources listed outside a request are located under.
const offlineBase = "/scim/v2"

// queryError makes a filter mistake a command-line mistake (exit code 2).
func queryError(err error) error {
	if e := scimserver.ErrorOf(err); e.Code == scimserver.Invalid && e.Type == "invalidFilter" {
		return usageError{fmt.Errorf("invalid filter: %s", e.Message)}
	}
	return err
}

// filterString quotes s as a SCIM filter string literal (JSON string syntax).
func filterString(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return strings.TrimSpace(b.String())
}

// text renders a scalar for a table cell.
func text(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return strings.NewReplacer("\t", " ", "\n", " ", "\r", " ").Replace(v)
	case json.Number:
		return v.String()
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	raw, _ := json.Marshal(v)
	return string(raw)
}

func personName(m map[string]any) string {
	if s := text(m["displayName"]); s != "" {
		return s
	}
	name, _ := m["name"].(map[string]any)
	if s := text(name["formatted"]); s != "" {
		return s
	}
	return strings.TrimSpace(text(name["givenName"]) + " " + text(name["familyName"]))
}

// flatten lists every scalar of v with its path: name.givenName, emails[0].value.
func flatten(path string, v any, rows *[][2]string) {
	switch v := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p := k
			if path != "" {
				p = path + "." + k
			}
			flatten(p, v[k], rows)
		}
	case []any:
		for i, el := range v {
			flatten(fmt.Sprintf("%s[%d]", path, i), el, rows)
		}
	default:
		*rows = append(*rows, [2]string{path, text(v)})
	}
}

// tenantStats are the figures stats prints for one tenant.
type tenantStats struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	Disabled     bool   `json:"disabled"`
	Users        int    `json:"users"`
	Groups       int    `json:"groups"`
	TrailEvents  int    `json:"trailEvents"`
	ActiveTokens int    `json:"activeTokens"`
}

func newStatsCmd(c *config) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Show tenants, users and groups per tenant, audit trail lengths and the data file's size",
		Long: `stats reads a stopped server's data file (or a backup, with --data) read-only and prints,
per tenant, its state, users, groups, audit trail events and live tokens, and the file's size:
on disk (what ls -l shows) and the part holding live data (the rest is free pages, which later
writes reuse and compact gives back, and room the file was grown by ahead of need).
A running server exposes the same figures on /metrics.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			return withReadOnlyStore(c, "stats", func(s *scimserver.Service, store dataStore) error {
				st, err := collectStats(s)
				if err != nil {
					return err
				}
				size, used, err := store.Sizes()
				if err != nil {
					return err
				}
				if format == "json" {
					return writeJSONOut(cmd.OutOrStdout(), map[string]any{"file": c.dataName(), "sizeBytes": size, "usedBytes": used, "tenants": st})
				}
				return printStats(cmd.OutOrStdout(), c.dataName(), size, used, st)
			})
		},
	}
	cmd.Flags().StringVar(&format, "format", "table", "table or json")
	return cmd
}

func collectStats(s *scimserver.Service) ([]tenantStats, error) {
	ctx := context.Background()
	tenants, err := s.Tenants(ctx)
	if err != nil {
		return nil, err
	}
	tokens, err := s.Tokens(ctx, "")
	if err != nil {
		return nil, err
	}
	live := map[string]int{}
	now := time.Now()
	for _, t := range tokens {
		if scimserver.TokenState(t, now) == "active" {
			live[t.Tenant]++
		}
	}
	out := make([]tenantStats, 0, len(tenants))
	for _, t := range tenants {
		ts := tenantStats{ID: t.ID, Name: t.Name, Disabled: t.Disabled, ActiveTokens: live[t.ID], Users: t.Users, Groups: t.Groups}
		if ts.TrailEvents, err = s.TrailLength(ctx, t.ID); err != nil {
			return nil, err
		}
		out = append(out, ts)
	}
	return out, nil
}

func printStats(w io.Writer, path string, size, used int64, st []tenantStats) error {
	fmt.Fprintf(w, "data file  %s\nsize       %d bytes (%s) on disk, %s of it live data\ntenants    %d\n\n", path, size, humanBytes(size), humanBytes(used), len(st))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TENANT\tNAME\tSTATE\tUSERS\tGROUPS\tTRAIL\tTOKENS")
	var users, groups, trail int
	for _, t := range st {
		state := "enabled"
		if t.Disabled {
			state = "disabled"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\n", t.ID, text(t.Name), state, t.Users, t.Groups, t.TrailEvents, t.ActiveTokens)
		users, groups, trail = users+t.Users, groups+t.Groups, trail+t.TrailEvents
	}
	fmt.Fprintf(tw, "total\t\t\t%d\t%d\t%d\t\n", users, groups, trail)
	return tw.Flush()
}
