package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scimserver/scimserver/scimserver"
	"github.com/scimserver/scimserver/storage"
)

// TestMigrate copies a directory built through the SCIM API and the platform's facts into a new
// data location, then serves the copy: the old token works, every lookup finds what it found
// before, the audited-delete rule holds, and the trail is the same, event for event. A second
// run, as after an interruption, duplicates nothing.
func TestMigrate(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src.db"), filepath.Join(dir, "dst.db")
	users, groups := seedDirectory(t, src)
	err := withService(&config{data: src}, func(ctx context.Context, s *scimserver.Service) error {
		if err := s.RecordInteraction(ctx, scimserver.DefaultTenant, testActor, users[0], "login", time.Now()); err != nil {
			return err
		}
		return s.AssignCampaign(ctx, scimserver.DefaultTenant, testActor, "q3-review", users[2])
	})
	if err != nil {
		t.Fatal(err)
	}

	stdout, stderr, err := run(t, "migrate", "--from", src, "--to", dst, "--batch", "2")
	if err != nil || !strings.Contains(stdout, "migrated and verified") {
		t.Fatalf("migrate: %v %q %q", err, stdout, stderr)
	}
	if !strings.Contains(stderr, "tenant default: users 3/3") || !strings.Contains(stderr, "tenant default: groups 2/2") {
		t.Errorf("progress lacks the final counts: %q", stderr)
	}
	// Run again, as after an interruption: nothing is duplicated.
	if _, _, err := run(t, "migrate", "--from", src, "--to", dst); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	if out, _, err := run(t, "check", "--data", dst); err != nil || !strings.Contains(out, "is consistent") {
		t.Fatalf("check of the copy: %v %q", err, out)
	}
	if want, got := trailOf(t, src), trailOf(t, dst); !slices.Equal(want, got) || len(want) < 7 {
		t.Fatalf("trail of the copy:\n%q\nwant\n%q", got, want)
	}
	err = withService(&config{data: dst}, func(ctx context.Context, s *scimserver.Service) error {
		_, err := s.Authenticate(ctx, opsSCIMToken)
		return err
	})
	if err != nil {
		t.Errorf("the source's token does not authenticate on the copy: %v", err)
	}

	l := startLive(t, dst)
	for _, c := range []struct {
		path string
		want string
	}{
		{"/Users?filter=" + url.QueryEscape(`userName eq "ADA@example.com"`), users[0]},
		{"/Users?filter=" + url.QueryEscape(`externalId eq "okta-1"`), users[0]},
		{"/Users?filter=" + url.QueryEscape(`emails.value eq "cy@example.com"`), users[2]},
		{"/Groups?filter=" + url.QueryEscape(`displayName eq "engineering"`), groups[0]},
		{"/Groups?filter=" + url.QueryEscape(`members.value eq "`+users[2]+`"`), groups[0]},
		{"/Groups?filter=" + url.QueryEscape(`externalId eq "g-sales"`), groups[1]},
	} {
		status, body := l.do(t, "GET", c.path)
		res, _ := body["Resources"].([]any)
		if status != http.StatusOK || len(res) != 1 || res[0].(map[string]any)["id"] != c.want {
			t.Errorf("GET %s on the copy: %d %v, want the one resource %s", c.path, status, body, c.want)
		}
	}
	// users[0] reported a login: audited, so DELETE deactivates it; users[1] is deleted.
	for _, u := range users[:2] {
		if status, body := l.do(t, "DELETE", "/Users/"+u); status != http.StatusNoContent {
			t.Fatalf("DELETE on the copy: %d %v", status, body)
		}
	}
	if status, body := l.do(t, "GET", "/Users/"+users[0]); status != http.StatusOK || body["active"] != false {
		t.Errorf("audited user after DELETE on the copy: %d %v, want it kept inactive", status, body)
	}
	if status, _ := l.do(t, "GET", "/Users/"+users[1]); status != http.StatusNotFound {
		t.Errorf("unaudited user after DELETE on the copy: %d, want 404", status)
	}
	status, body := l.do(t, "GET", "/Users/"+users[2])
	lifecycle, _ := body["urn:ietf:params:scim:schemas:extension:lifecycle:2.0:User"].(map[string]any)
	if status != http.StatusOK || lifecycle["audited"] != true || lifecycle["campaignCount"] != float64(1) {
		t.Errorf("campaign participant on the copy: %d %v", status, lifecycle)
	}
	l.stop()

	// Command-line mistakes.
	for _, args := range [][]string{
		{"migrate", "--from", src},
		{"migrate", "--to", dst},
		{"migrate", "--from", src, "--to", src},
		{"migrate", "--from", src, "--to", dst, "--batch", "0"},
	} {
		if _, _, err := run(t, args...); !isUsage(err) {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
}

// trailOf lists the default tenant's trail, one line per event with its number and time.
func trailOf(t *testing.T, data string) []string {
	t.Helper()
	var out []string
	err := withService(&config{data: data}, func(ctx context.Context, s *scimserver.Service) error {
		return s.Store().Read(ctx, scimserver.DefaultTenant, func(tx storage.Tx) error {
			return tx.Events(0, func(ev storage.Event) (bool, error) {
				raw, err := json.Marshal(ev)
				out = append(out, string(raw))
				return true, err
			})
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// do sends a SCIM request with the SCIM token and decodes the answer.
func (l *liveServer) do(t *testing.T, method, path string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, l.srv.URL+"/scim/v2"+path, nil)
	req.Header.Set("Authorization", "Bearer "+opsSCIMToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, out
}
