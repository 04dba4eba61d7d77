package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// notifyListener is a fake systemd: the datagrams a Type=notify service
// sends on $NOTIFY_SOCKET.
func notifyListener(t *testing.T, name string) (*net.UnixConn, func() string) {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	next := func() string {
		t.Helper()
		buf := make([]byte, 4096)
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("no notification: %v", err)
		}
		return string(buf[:n])
	}
	return c, next
}

// TestNotifyReady: started as a Type=notify unit, the daemon says READY=1
// only once it serves (the CLI socket and the HTTP API answer the moment
// the datagram arrives) and STOPPING=1 when told to stop, then exits 0.
func TestNotifyReady(t *testing.T) {
	httpAddr := freePort(t)
	g := newGatewayWith(t, "", fmt.Sprintf("[http]\nlisten = %q\n", httpAddr))
	sock := filepath.Join(t.TempDir(), "notify")
	_, next := notifyListener(t, sock)
	g.d = start(t, g.dir, []string{"NOTIFY_SOCKET=" + sock}, "run", "--config", g.config)

	msg := next()
	if !strings.Contains(msg, "READY=1") {
		t.Fatalf("first notification %q, want READY=1", msg)
	}
	// Checked at once: a READY sent before the listeners were up fails here.
	c, err := net.Dial("unix", filepath.Join(g.dir, "data", "outpost.sock"))
	if err != nil {
		t.Fatalf("READY=1 came but the CLI socket does not answer: %v", err)
	}
	c.Close()
	resp, err := http.Get("http://" + httpAddr + "/healthz")
	if err != nil {
		t.Fatalf("READY=1 came but the HTTP API does not answer: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/healthz: %s", resp.Status)
	}
	if !strings.Contains(g.d.out.String(), "outpost running") {
		t.Fatalf("READY=1 before the daemon logged it was running:\n%s", g.d.out.String())
	}
	g.d.stop()
	if msg := next(); !strings.Contains(msg, "STOPPING=1") {
		t.Fatalf("notification on SIGTERM %q, want STOPPING=1", msg)
	}
	if g.d.err != nil {
		t.Fatalf("daemon exit: %v\n%s", g.d.err, g.d.out.String())
	}
}

// TestNotifyAbstract: systemd may give an abstract socket ("@name").
func TestNotifyAbstract(t *testing.T) {
	name := fmt.Sprintf("@outpost-test-%d", os.Getpid())
	_, next := notifyListener(t, name)
	t.Setenv("NOTIFY_SOCKET", name)
	if err := sdNotify("READY=1"); err != nil {
		t.Fatal(err)
	}
	if msg := next(); msg != "READY=1" {
		t.Fatalf("got %q", msg)
	}
	t.Setenv("NOTIFY_SOCKET", "")
	if err := sdNotify("READY=1"); err != nil {
		t.Fatalf("without NOTIFY_SOCKET: %v", err)
	}
}

// cliEnv is cli with more environment.
func cliEnv(t *testing.T, dir string, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return out.String(), errb.String(), ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), 0
}

// TestConfigFromEnv: a daemon started with $OUTPOST_CONFIG and no flag is
// found by the CLI from any folder with the same variable and no flag;
// a wrong variable is an error that names it; flags win over it.
func TestConfigFromEnv(t *testing.T) {
	g := newGateway(t, "")
	env := []string{"OUTPOST_CONFIG=" + g.config}
	g.d = start(t, g.dir, env, "run")
	g.d.waitReady(t)
	elsewhere := t.TempDir()

	out, errs, code := cliEnv(t, elsewhere, env, "status", "--json")
	if code != 0 || !strings.Contains(out, `"sim0"`) {
		t.Fatalf("status with $OUTPOST_CONFIG: exit %d: %s%s", code, out, errs)
	}
	id := func() string {
		out, errs, code := cliEnv(t, elsewhere, env, "send", "--to", "+15555550100", "--text", "found by env")
		if code != 0 {
			t.Fatalf("send: exit %d: %s", code, errs)
		}
		l := strings.Split(strings.TrimSpace(out), "\n")
		return l[len(l)-1]
	}()
	g.waitEcho("found by env")
	if s := g.show(id); s.ID != id {
		t.Fatalf("show %s: %+v", id, s)
	}

	_, errs, code = cliEnv(t, elsewhere, []string{"OUTPOST_CONFIG=" + filepath.Join(elsewhere, "nope.toml")}, "status")
	if code != 1 || !strings.Contains(errs, "nope.toml") || !strings.Contains(errs, "$OUTPOST_CONFIG") {
		t.Fatalf("a missing $OUTPOST_CONFIG: exit %d: %s", code, errs)
	}
	// Set empty: the defaults, ./outpost-data, where no daemon runs.
	_, errs, code = cliEnv(t, elsewhere, []string{"OUTPOST_CONFIG="}, "status")
	if code != 1 || !strings.Contains(errs, "no daemon is running") || !strings.Contains(errs, filepath.Join("outpost-data", "outpost.sock")) {
		t.Fatalf("OUTPOST_CONFIG empty: exit %d: %s", code, errs)
	}
	// --data-dir wins over the variable.
	_, errs, code = cliEnv(t, elsewhere, env, "status", "--data-dir", elsewhere)
	if code != 1 || !strings.Contains(errs, elsewhere) {
		t.Fatalf("--data-dir with $OUTPOST_CONFIG: exit %d: %s", code, errs)
	}
	_, errs, code = cliEnv(t, elsewhere, []string{"OUTPOST_CONFIG=" + filepath.Join(elsewhere, "nope.toml")}, "status", "--config", g.config)
	if code != 0 {
		t.Fatalf("--config with a wrong $OUTPOST_CONFIG: exit %d: %s", code, errs)
	}
	// The daemon too: a wrong variable stops it at once, saying why.
	out, errs, code = cliEnv(t, elsewhere, []string{"OUTPOST_CONFIG=" + filepath.Join(elsewhere, "nope.toml")}, "run")
	if code != 1 || !strings.Contains(errs, "$OUTPOST_CONFIG") {
		t.Fatalf("run with a missing $OUTPOST_CONFIG: exit %d: %s%s", code, out, errs)
	}
}

// TestConfigDiscovery: the order a command that talks to the daemon finds
// its config in, with the installed config's path pointed at a file here.
func TestConfigDiscovery(t *testing.T) {
	dir := t.TempDir()
	installed := filepath.Join(dir, "installed.toml")
	other := filepath.Join(dir, "other.toml")
	write := func(path, dataDir string) {
		if err := os.WriteFile(path, fmt.Appendf(nil, "data_dir = %q\n", dataDir), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(installed, "/var/lib/outpost-test")
	write(other, "/srv/other")
	saved := systemConfig
	t.Cleanup(func() { systemConfig = saved })
	systemConfig = installed

	dataDir := func(flag string) string {
		t.Helper()
		c, err := clientConfig(flag)
		if err != nil {
			t.Fatal(err)
		}
		return c.DataDir
	}
	t.Setenv(configEnv, "")
	os.Unsetenv(configEnv)
	if d := dataDir(""); d != "/var/lib/outpost-test" {
		t.Errorf("installed config present: data dir %q", d)
	}
	if d := dataDir(other); d != "/srv/other" {
		t.Errorf("--config: data dir %q", d)
	}
	t.Setenv(configEnv, other)
	if d := dataDir(""); d != "/srv/other" {
		t.Errorf("$OUTPOST_CONFIG: data dir %q", d)
	}
	t.Setenv(configEnv, "")
	if d := dataDir(""); d != "./outpost-data" {
		t.Errorf("$OUTPOST_CONFIG empty: data dir %q", d)
	}
	os.Unsetenv(configEnv)
	systemConfig = filepath.Join(dir, "absent.toml")
	if d := dataDir(""); d != "./outpost-data" {
		t.Errorf("nothing installed: data dir %q", d)
	}
	// A broken installed config is an error naming it, not the defaults.
	systemConfig = installed
	if err := os.WriteFile(installed, []byte("data_dir = \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := clientConfig(""); err == nil || !strings.Contains(err.Error(), "installed") || !strings.Contains(err.Error(), "installed.toml") {
		t.Errorf("broken installed config: %v", err)
	}
}
