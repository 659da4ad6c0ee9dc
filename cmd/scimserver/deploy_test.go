package main

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/scimserver/scimserver/internal/testtool"
)

// TestSystemdUnit checks deploy/scimserver.service with systemd's own verifier (its ExecStart
// pointed at a freshly built binary, since verify wants an executable there): no warning at all,
// and an exposure score of "OK" from systemd-analyze security. It cannot start the unit: that
// takes a running systemd, which a test must not touch.
func TestSystemdUnit(t *testing.T) {
	analyze := testtool.Path(t, "systemd-analyze", "to verify deploy/scimserver.service")
	raw, err := os.ReadFile("../../deploy/scimserver.service")
	if err != nil {
		t.Fatal(err)
	}
	unit := string(raw)
	for _, want := range []string{"\nUser=scimserver\n", "\nStateDirectory=scimserver\n", "\nProtectSystem=strict\n",
		"\nNoNewPrivileges=yes\n", "\nRestart=on-failure\n", "\nEnvironmentFile=-/etc/scimserver/env\n",
		"\nExecStart=/usr/local/bin/scimserver\n", "\nEnvironment=SCIMSERVER_BOOTSTRAP_TOKEN_FILE=/var/lib/scimserver/first-token\n"} {
		if !strings.Contains(unit, want) {
			t.Errorf("the unit lacks %q", strings.TrimSpace(want))
		}
	}
	dir := t.TempDir()
	verify := func(name, text string) (string, error) {
		path := filepath.Join(dir, name)
		text = strings.ReplaceAll(text, "/usr/local/bin/scimserver", scimserverBinary(t))
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(analyze, "verify", path).CombinedOutput()
		return string(out), err
	}
	if out, err := verify("scimserver.service", unit); err != nil || out != "" {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	// The check can fail: a misspelt directive and a bad value are reported.
	bad := strings.Replace(strings.Replace(unit, "NoNewPrivileges=yes", "NoNewPrivilegs=yes", 1), "ProtectSystem=strict", "ProtectSystem=strictly", 1)
	if out, _ := verify("bad.service", bad); !strings.Contains(out, "NoNewPrivilegs") || !strings.Contains(out, "strictly") {
		t.Fatalf("a broken unit passed: %s", out)
	}
	out, err := exec.Command(analyze, "security", "--offline=yes", "--threshold=20", filepath.Join(dir, "scimserver.service")).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: exposure above 2.0 (threshold 20 of 100): %v\n%s", err, out)
	}
	if m := regexp.MustCompile(`Overall exposure level for scimserver.service: ([0-9.]+)`).FindStringSubmatch(string(out)); m != nil {
		t.Logf("exposure level %s", m[1])
	}
}

// TestDockerfile checks what can be checked of the container image without a container engine:
// the stages and the run-time settings, and that the build stage's command, run here, produces a
// static binary (CGO_ENABLED=0, so that it runs on a distroless base) of this version.
func TestDockerfile(t *testing.T) {
	raw, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var stages [][]string // the instructions of each stage, continuation lines joined
	for _, line := range strings.Split(strings.ReplaceAll(string(raw), "\\\n", " "), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "FROM ") {
			stages = append(stages, nil)
		}
		if len(stages) > 0 {
			stages[len(stages)-1] = append(stages[len(stages)-1], line)
		}
	}
	if len(stages) != 2 {
		t.Fatalf("want a build stage and a run stage, got %d stages", len(stages))
	}
	find := func(stage []string, prefix string) string {
		for _, l := range stage {
			if strings.HasPrefix(l, prefix) {
				return l
			}
		}
		t.Errorf("no %q instruction in stage %s", prefix, stage[0])
		return ""
	}
	gomod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	goVersion := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(gomod)
	if goVersion == nil || !strings.Contains(string(raw), "ARG GO_VERSION="+string(goVersion[1])+"\n") {
		t.Errorf("the build image's Go version is not go.mod's (%s)", goVersion)
	}
	build, run := stages[0], stages[1]
	if !strings.HasSuffix(build[0], " AS build") {
		t.Errorf("first stage: %s", build[0])
	}
	if from := run[0]; !strings.HasPrefix(from, "FROM gcr.io/distroless/static") && from != "FROM scratch" {
		t.Errorf("the run stage's base is not distroless/static or scratch: %s", from)
	}
	if user := find(run, "USER "); user == "USER root" || strings.HasPrefix(user, "USER 0") {
		t.Errorf("the image runs as root: %s", user)
	}
	if v := find(run, "VOLUME "); !strings.Contains(v, `"/data"`) {
		t.Errorf("no /data volume: %s", v)
	}
	if env := find(run, "ENV "); !strings.Contains(env, "SCIMSERVER_DATA=/data/") || !strings.Contains(env, "SCIMSERVER_BOOTSTRAP_TOKEN_FILE=/data/") {
		t.Errorf("data and first token not on the volume: %s", env)
	}
	if hc := find(run, "HEALTHCHECK "); !strings.Contains(hc, `CMD ["/usr/local/bin/scimserver", "healthz"]`) {
		t.Errorf("health check: %s", hc)
	}
	if !strings.Contains(find(run, "COPY --from=build /out/scimserver "), "/usr/local/bin/scimserver") ||
		!strings.HasPrefix(find(run, "ENTRYPOINT "), `ENTRYPOINT ["/usr/local/bin/scimserver"]`) {
		t.Error("the binary is not where the entry point and health check look")
	}

	// Run the build stage's go build here, as the image would (/src is the repository root).
	cmdLine := strings.TrimPrefix(find(build, "RUN CGO_ENABLED=0 go build "), "RUN ")
	if cmdLine == "" {
		t.FailNow()
	}
	out := t.TempDir()
	cmdLine = strings.ReplaceAll(cmdLine, "/out/", out+"/")
	cmd := exec.Command("sh", "-c", cmdLine)
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), "VERSION=v0.0.0-image")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cmdLine, err, msg)
	}
	bin := filepath.Join(out, "scimserver")
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary needs a dynamic loader: not a static build")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the binary links %v", libs)
	}
	if v, err := exec.Command(bin, "version").Output(); err != nil || !strings.HasPrefix(string(v), "scimserver v0.0.0-image\n") {
		t.Errorf("version of the image's binary: %v %s", err, v)
	}
}
