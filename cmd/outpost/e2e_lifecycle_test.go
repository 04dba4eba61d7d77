package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	pahomqtt "github.com/eclipse/paho.mqtt.golang"
)

// Issue 10, section 1: start-up and lifecycle.

// runFails starts "outpost run" with cfg and wants it to exit 1 within a
// few seconds, without ever saying it runs, with every want in its output.
func runFails(t *testing.T, dir, cfg string, want ...string) string {
	t.Helper()
	path := filepath.Join(dir, "outpost.toml")
	writeConfig(t, path, cfg)
	p := start(t, dir, nil, "run", "--config", path)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("still running 10s after a failed start:\n%s", p.out.String())
	}
	out := p.out.String()
	var ee *exec.ExitError
	if code := 0; p.err != nil {
		if !asExit(p.err, &ee) {
			t.Fatalf("wait: %v", p.err)
		}
		code = ee.ExitCode()
		if code != 1 {
			t.Errorf("exit %d, want 1", code)
		}
	} else {
		t.Errorf("exit 0 after a failed start")
	}
	if strings.Contains(out, "outpost running") {
		t.Errorf("said it runs although a part failed:\n%s", out)
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
	return out
}

func asExit(err error, ee **exec.ExitError) bool {
	e, ok := err.(*exec.ExitError)
	*ee = e
	return ok
}

// TestStartFailuresExit: a part that cannot start (the broker's port in
// use, the data folder unusable, the CLI socket) ends the daemon with exit
// 1 within seconds, saying what failed and where; before, it logged
// "outpost running" and stayed up without the part (exiting only on
// SIGTERM).
func TestStartFailuresExit(t *testing.T) {
	dir := t.TempDir()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	base := "gateway_id = \"gw1\"\ndata_dir = %q\n[mqtt]\nlisten = %q\nallow_anonymous = true\n%s[[modem]]\nid = \"sim0\"\ntype = \"sim\"\n"

	t.Run("mqtt port in use", func(t *testing.T) {
		runFails(t, dir, fmt.Sprintf(base, filepath.Join(dir, "d1"), taken.Addr().String(), ""),
			"mqtt listen "+taken.Addr().String(), "address already in use")
	})
	t.Run("websocket port in use", func(t *testing.T) {
		ws := fmt.Sprintf("websocket_listen = %q\n[[mqtt.user]]\nname = \"u\"\npassword_hash = \"$2a$10$abcdefghijklmnopqrstuuN3wKxWd7dEYxwpsxq8SyTDRyf0C9xKS\"\n", taken.Addr().String())
		runFails(t, dir, fmt.Sprintf(base, filepath.Join(dir, "d2"), freePort(t), ws),
			"mqtt WebSocket listen "+taken.Addr().String(), "address already in use")
	})
	t.Run("data folder is a file", func(t *testing.T) {
		file := filepath.Join(dir, "afile")
		os.WriteFile(file, nil, 0o600)
		runFails(t, dir, fmt.Sprintf(base, filepath.Join(file, "data"), freePort(t), ""), "data folder", file, "not a directory")
	})
	t.Run("socket path too long", func(t *testing.T) {
		long := filepath.Join(dir, strings.Repeat("x", 120))
		runFails(t, dir, fmt.Sprintf(base, long, freePort(t), ""), "listen "+filepath.Join(long, "outpost.sock"))
	})
	t.Run("read-only data folder", func(t *testing.T) {
		ro := mountTmpfs(t, "ro,size=1m")
		runFails(t, dir, fmt.Sprintf(base, filepath.Join(ro, "data"), freePort(t), ""), filepath.Join(ro, "data"), "read-only file system")
	})
}

// mountTmpfs mounts a small tmpfs for the test (root only: CI runs as
// root; elsewhere the test is skipped).
func mountTmpfs(t *testing.T, opts string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root (CI runs as root)")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", opts, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

// TestOneDaemonPerDataFolder: a second daemon on the same data folder
// exits 1 naming the first one's pid, before it opens anything (before,
// it took the simulated modem's link over and re-queued the first one's
// sends); the same for a second simulator on one pty path. The first
// goes on undisturbed, and after it stops a new one starts.
func TestOneDaemonPerDataFolder(t *testing.T) {
	g := newGateway(t, "")
	g.start()
	second := start(t, g.dir, nil, "run", "--config", g.config)
	select {
	case <-second.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("a second daemon on the same folder is still running:\n%s", second.out.String())
	}
	want := fmt.Sprintf("already running (pid %d) on %s", g.d.cmd.Process.Pid, filepath.Join(g.dir, "data"))
	if second.err == nil || !strings.Contains(second.out.String(), want) {
		t.Fatalf("second daemon: %v, output lacks %q:\n%s", second.err, want, second.out.String())
	}
	id := g.send("still me")
	g.waitDelivered(id)

	g.d.stop()
	if !strings.Contains(g.d.out.String(), "outpost stopped") || g.d.err != nil {
		t.Errorf("a clean stop: %v, output:\n%s", g.d.err, g.d.out.String())
	}
	g.start() // the lock went with the first one

	dir := t.TempDir()
	path, first := simModem(t, dir)
	again := start(t, dir, nil, "sim", "--pty", path)
	select {
	case <-again.done:
	case <-time.After(10 * time.Second):
		t.Fatal("a second simulator on the same path is still running")
	}
	want = fmt.Sprintf("already running (pid %d) on %s", first.cmd.Process.Pid, path)
	if again.err == nil || !strings.Contains(again.out.String(), want) {
		t.Fatalf("second sim: %v, output lacks %q:\n%s", again.err, want, again.out.String())
	}
}

// TestReadyMeansReady: once "outpost running" is logged, the broker
// accepts a connection and the CLI answers, with no retry (before, the
// line came before the broker listened).
func TestReadyMeansReady(t *testing.T) {
	g := newGateway(t, "")
	g.start()
	c, err := net.Dial("tcp", g.mqtt)
	if err != nil {
		t.Fatalf("broker not listening when the daemon said it runs: %v", err)
	}
	c.Close()
	if _, errs, code := g.cli("status"); code != 0 {
		t.Fatalf("status when the daemon said it runs: %d %s", code, errs)
	}
	line := g.d.out.String()
	line = line[strings.Index(line, "outpost running"):]
	line = line[:strings.IndexByte(line, '\n')]
	for _, w := range []string{"mqtt=" + g.mqtt, "socket=", "modems=1"} {
		if !strings.Contains(line, w) {
			t.Errorf("the running line lacks %q: %s", w, line)
		}
	}
	g.d.cmd.Process.Signal(syscall.SIGINT)
	<-g.d.done
	if g.d.err != nil || !strings.Contains(g.d.out.String(), "outpost stopped") {
		t.Errorf("SIGINT: %v\n%s", g.d.err, g.d.out.String())
	}
}

// TestHubLinkWithoutLocalBroker: hub.url with mqtt.listen = "" runs the
// hub link all the same (before, no link was started and nothing said
// so): a send's status changes and the echo reach the hub.
func TestHubLinkWithoutLocalBroker(t *testing.T) {
	hub := newMosquittoHub(t)
	hub.start()
	got := make(chan pahomqtt.Message, 100)
	sub := hub.client("watcher", true, got)
	defer sub.Disconnect(100)
	subscribeOK(t, sub, "outpost/gw1/#")

	dir := t.TempDir()
	g := &gateway{t: t, dir: dir, config: filepath.Join(dir, "outpost.toml")}
	writeConfig(t, g.config, fmt.Sprintf("gateway_id = \"gw1\"\ndata_dir = %q\n[mqtt]\nlisten = \"\"\n[hub]\nurl = \"tcp://%s\"\n[[modem]]\nid = \"sim0\"\ntype = \"sim\"\n",
		filepath.Join(dir, "data"), hub.addr))
	g.start()
	if strings.Contains(g.d.out.String(), "local MQTT broker listening") {
		t.Errorf("a local broker listens although mqtt.listen is empty")
	}
	id := g.send("over the hub")
	seen := map[string]bool{}
	deadline := time.After(20 * time.Second)
	for !seen["outpost/gw1/sms/status/"+id] || !seen["outpost/gw1/sms/in"] {
		select {
		case m := <-got:
			if m.Topic() == "outpost/gw1/sms/in" && !strings.Contains(string(m.Payload()), "echo: over the hub") {
				continue
			}
			seen[m.Topic()] = true
		case <-deadline:
			t.Fatalf("the hub got %v; want the send's status and the echo", seen)
		}
	}
}

// TestHungDaemon: a daemon that takes a request and does not answer is
// told apart from no daemon at all, and a send whose answer was lost
// names the id it may have been stored as; sent again with that id, it
// is stored once (before: "no daemon is running", which invites a second
// send: two SMS).
func TestHungDaemon(t *testing.T) {
	g := newGateway(t, "")
	g.start()
	g.d.cmd.Process.Signal(syscall.SIGSTOP)
	_, errs, code := g.cli("send", "--to", "+15555550100", "--text", "hung", "--timeout", "1s")
	g.d.cmd.Process.Signal(syscall.SIGCONT)
	m := regexp.MustCompile(`may have been stored as (\S+): check with "outpost show (\S+)"`).FindStringSubmatch(errs)
	if code != 1 || !strings.Contains(errs, "the daemon does not answer") || m == nil || m[1] != m[2] {
		t.Fatalf("send to a stopped daemon: exit %d, %q", code, errs)
	}
	id := m[1]
	out, errs, code := g.cli("send", "--to", "+15555550100", "--text", "hung", "--id", id)
	if code != 0 || !strings.HasSuffix(strings.TrimSpace(out), id) {
		t.Fatalf("send again with --id: %d %q %q", code, out, errs)
	}
	s := g.waitDelivered(id)
	if len(s.Deliveries) != 1 {
		t.Fatalf("stored %d times", len(s.Deliveries))
	}
	if n, _ := g.echoes("echo: hung"); n > 1 {
		t.Fatalf("%d echoes: sent twice", n)
	}
}

// TestCLIUsage: every command answers --help with exit 0; extra
// arguments, missing ones and flags that exclude each other are usage
// errors (exit 2) that say what is wrong; a flag's bad value names the
// flag, not a JSON field.
func TestCLIUsage(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"run", "--help"}, {"send", "--help"}, {"show", "--help"}, {"inbox", "--help"}, {"status", "--help"},
		{"sim", "--help"}, {"passwd", "--help"}, {"decode", "--help"}, {"decode", "pdu", "--help"},
		{"decode", "join", "--help"}, {"decode", "xform", "--help"}, {"encode", "--help"}, {"encode", "sms", "--help"},
		{"encode", "xform", "--help"}, {"retry", "--help"}, {"cancel", "--help"}, {"config", "--help"}, {"config", "check", "--help"}, {"version", "--help"}, {"help"}, {"--help"},
	} {
		out, errs, code := cli(t, dir, args...)
		if code != 0 || !strings.Contains(out+errs, "usage: outpost") {
			t.Errorf("%v: exit %d: %q", args, code, out+errs)
		}
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"send", "--to", "+15555550100", "--text", "hello", "world"}, `unexpected argument "world"`},
		{[]string{"send", "--to", "+15555550100", "--text", "x", "--at", "tomorrow"}, `--at "tomorrow"`},
		{[]string{"send", "--to", "+15555550100", "--text", "x", "--expires", "soon"}, `--expires "soon"`},
		{[]string{"send", "--text", "x"}, "--to is required"},
		{[]string{"send", "--to", "+15555550100", "--text", "x", "--priority", "critical"}, `--priority "critical": give low, normal, high, urgent`},
		{[]string{"encode", "sms", "--to", "+15555550100", "--data-hex", "00", "--text", "x"}, "exclude each other"},
		{[]string{"encode", "sms", "--to", "+15555550100", "--text", "x", "--port", "9200"}, "--port goes with --data-hex"},
		{[]string{"show"}, "missing argument"},
		{[]string{"show", "a", "b"}, `unexpected argument "b"`},
		{[]string{"inbox", "extra"}, `unexpected argument "extra"`},
		{[]string{"retry"}, "missing argument"},
		{[]string{"cancel", "a", "b"}, `unexpected argument "b"`},
		{[]string{"run", "extra"}, `unexpected argument "extra"`},
		{[]string{"decode", "pdu", "00", "11"}, `unexpected argument "11"`},
		{[]string{"config", "check"}, "missing argument"},
		{[]string{"config", "check", "a.toml", "b.toml"}, `unexpected argument "b.toml"`},
		{[]string{"config"}, "usage: outpost config check"},
		{[]string{"nosuch"}, "unknown command"},
		{[]string{"sim"}, "--pty PATH is required"},
		{[]string{"version", "extra"}, `unexpected argument "extra"`},
		{[]string{"sim", "--pty", filepath.Join(dir, "x.pty"), "--number", "abc"}, `--number "abc"`},
		{[]string{"version", "--bogus"}, "flag provided but not defined: -bogus"},
	} {
		_, errs, code := cli(t, dir, c.args...)
		if code != 2 || !strings.Contains(errs, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", c.args, code, errs, c.want)
		}
	}
	// A file without [[modem]] runs the simulator: config check says so.
	nomodem := filepath.Join(dir, "nomodem.toml")
	writeConfig(t, nomodem, "gateway_id = \"gw\"\n")
	if _, errs, code := cli(t, dir, "config", "check", nomodem); code != 0 || !strings.Contains(errs, "lists no [[modem]]: the simulated modem sim0 is used") {
		t.Errorf("config check without [[modem]]: %d %q", code, errs)
	}
	// [hub] rules without hub.url do not do what they seem to: said.
	nohub := filepath.Join(dir, "nohub.toml")
	writeConfig(t, nohub, "gateway_id = \"gw\"\n[[hub.forward]]\ntopic = \"dev/#\"\n")
	if _, errs, code := cli(t, dir, "config", "check", nohub); code != 0 || !strings.Contains(errs, "[[hub.forward]] without hub.url: messages on those topics are kept in the hub queue") {
		t.Errorf("config check of [[hub.forward]] without hub.url: %d %q", code, errs)
	}
	bad := filepath.Join(dir, "bad.toml")
	writeConfig(t, bad, "gateway_id = \"g\\u0000x\"\n[mqtt]\nlisten = \"127.0.0.1:99999\"\nmax_clients = -3\n[[modem]]\ntype = \"sim\"\n")
	if _, errs, code := cli(t, dir, "config", "check", bad); code != 1 || !strings.Contains(errs, "gateway_id") || !strings.Contains(errs, "mqtt.listen") || !strings.Contains(errs, "mqtt.max_clients") {
		t.Errorf("config check of bad values: %d %q", code, errs)
	}
	// Failures that are not usage errors exit 1.
	for _, args := range [][]string{{"status"}, {"show", "x"}, {"decode", "pdu", "zz"}, {"decode", "xform", filepath.Join(dir, "none")}} {
		if _, errs, code := cli(t, dir, args...); code != 1 {
			t.Errorf("%v: exit %d (%s), want 1", args, code, errs)
		}
	}
}

// TestDaemonGoneMidRequest: a daemon that takes a send and goes away
// before answering (killed, crashed) is not "no daemon is running": the
// message may have been stored, and the command says as what (before, an
// operator took it for not sent and sent it again: two SMS).
func TestDaemonGoneMidRequest(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "outpost.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			// Read the request's head, then hang up without a word.
			conn.Read(make([]byte, 4096))
			conn.Close()
		}
	}()
	_, errs, code := cli(t, dir, "send", "--data-dir", dir, "--to", "+15555550100", "--text", "gone")
	m := regexp.MustCompile(`may have been stored as (\S+): check with "outpost show (\S+)"`).FindStringSubmatch(errs)
	if code != 1 || strings.Contains(errs, "no daemon is running") || !strings.Contains(errs, "closed the connection before answering") || m == nil || m[1] != m[2] {
		t.Errorf("send to a daemon that hangs up: exit %d, %q", code, errs)
	}
	os.Remove(sock)
	if _, errs, code := cli(t, dir, "send", "--data-dir", dir, "--to", "+15555550100", "--text", "none"); code != 1 || !strings.Contains(errs, "no daemon is running") {
		t.Errorf("send with no daemon: exit %d, %q", code, errs)
	}
}
