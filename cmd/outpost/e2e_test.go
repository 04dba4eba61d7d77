package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	pahomqtt "github.com/eclipse/paho.mqtt.golang"
)

// The end-to-end tests build the real binary and drive it as a user would:
// the daemon as a process, the CLI over its socket, the simulated modem on
// a pty (in the daemon, or as a separate "outpost sim" process so that the
// SIM survives a daemon crash).

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "outpost-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "outpost")
	out, err := exec.Command("go", "build", "-race", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		os.Exit(1)
	}
	// A race-enabled binary sleeps a second at exit unless told not to;
	// the CLI runs hundreds of times here.
	os.Setenv("GORACE", "atexit_sleep_ms=0")
	// The tests' CLI finds their daemons in ./outpost-data, also on a
	// box where the package installed /etc/outpost/outpost.toml.
	os.Setenv("OUTPOST_CONFIG", "")
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// syncBuffer collects a process's output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type proc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *syncBuffer
	done  chan struct{}
	err   error
}

func start(t *testing.T, dir string, env []string, args ...string) *proc {
	t.Helper()
	return startCmd(t, dir, env, binary, args...)
}

// startCmd runs any program the way start runs outpost.
func startCmd(t *testing.T, dir string, env []string, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Dir = dir
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	var err error
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("output of %v:\n%s", args, p.out.String())
		}
	})
	return p
}

func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) kill() {
	p.cmd.Process.Kill()
	<-p.done
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cli runs the CLI and returns stdout, stderr and the exit code.
func cli(t *testing.T, dir string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// freePort returns a loopback address free now and never handed out
// before in this run: a port reserved for a server that is down (a relay
// started later) must not be given again to the next one asked for, which
// the kernel may well do once the first is closed.
func freePort(t *testing.T) string {
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		givenPortsMu.Lock()
		seen := givenPorts[addr]
		givenPorts[addr] = true
		givenPortsMu.Unlock()
		if !seen {
			return addr
		}
	}
}

// parallelTests are the tests already made parallel (some run two
// daemons: t.Parallel may be called once).
var parallelTests sync.Map

var (
	givenPortsMu sync.Mutex
	givenPorts   = map[string]bool{}
)

// gateway is a daemon in its own folder with its own config.
type gateway struct {
	t      *testing.T
	dir    string
	config string
	mqtt   string
	d      *proc
}

// newGateway writes a config: the in-process simulated modem, or a serial
// device (a pty served by "outpost sim") when device is set.
func newGateway(t *testing.T, device string) *gateway {
	return newGatewayWith(t, device, "")
}

// newGatewayWith is newGateway with more TOML at the end of the config.
func newGatewayWith(t *testing.T, device, extra string) *gateway {
	// Each daemon has its own folder, ports and modems, and the tests
	// that run one mostly wait on it: they run side by side (-parallel
	// in scripts/test.sh). A test that sets the process's environment
	// runs no daemon here.
	if _, again := parallelTests.LoadOrStore(t, true); !again {
		t.Parallel()
	}
	dir := t.TempDir()
	g := &gateway{t: t, dir: dir, config: filepath.Join(dir, "outpost.toml"), mqtt: freePort(t)}
	modem := "[[modem]]\nid = \"sim0\"\ntype = \"sim\"\n"
	if device != "" {
		modem = fmt.Sprintf("[[modem]]\nid = \"m1\"\ntype = \"serial\"\ndevice = %q\ncommand_timeout = \"3s\"\nsweep_interval = \"2s\"\n", device)
	}
	cfg := fmt.Sprintf("gateway_id = \"gw1\"\ndata_dir = %q\nlog_level = \"debug\"\n[mqtt]\nlisten = %q\nallow_anonymous = true\n%s%s",
		filepath.Join(dir, "data"), g.mqtt, modem, extra)
	if err := os.WriteFile(g.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return g
}

func (g *gateway) start(env ...string) {
	g.t.Helper()
	g.d = start(g.t, g.dir, env, "run", "--config", g.config)
	g.d.waitReady(g.t)
}

// waitReady waits for the daemon's "outpost running", logged once its
// socket, broker and connectors are up, and fails the test if the daemon
// exits first.
func (p *proc) waitReady(t *testing.T) {
	t.Helper()
	n := strings.Count(p.out.String(), "outpost running")
	deadline := time.After(20 * time.Second)
	for strings.Count(p.out.String(), "outpost running") == n {
		select {
		case <-p.done:
			t.Fatalf("the daemon exited before it was ready: %v\n%s", p.err, p.out.String())
		case <-deadline:
			t.Fatalf("the daemon did not say it was running within 20s:\n%s", p.out.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (g *gateway) cli(args ...string) (string, string, int) {
	return cli(g.t, g.dir, append(args, "--config", g.config)...)
}

func (g *gateway) send(text string, flags ...string) string {
	g.t.Helper()
	out, errs, code := g.cli(append([]string{"send", "--to", "+15555550100", "--text", text}, flags...)...)
	if code != 0 {
		g.t.Fatalf("send: exit %d: %s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	return lines[len(lines)-1]
}

type shown struct {
	ID         string `json:"id"`
	State      string `json:"state"`
	Deliveries []struct {
		State, Recipient string
		Attempts         int
	} `json:"deliveries"`
	Events []struct{ State, Detail string } `json:"events"`
}

func (g *gateway) show(id string) shown {
	g.t.Helper()
	out, errs, code := g.cli("show", id, "--json")
	if code != 0 {
		g.t.Fatalf("show: exit %d: %s", code, errs)
	}
	var s shown
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		g.t.Fatalf("show output: %v\n%s", err, out)
	}
	return s
}

type inboxEntry struct {
	ID    string  `json:"id"`
	Peer  string  `json:"peer"`
	Text  *string `json:"text"`
	Parts int     `json:"parts"`
	State string  `json:"state"`
}

func (g *gateway) inbox() []inboxEntry {
	g.t.Helper()
	out, errs, code := g.cli("inbox", "--json", "--limit", "100")
	if code != 0 {
		g.t.Fatalf("inbox: exit %d: %s", code, errs)
	}
	var es []inboxEntry
	if err := json.Unmarshal([]byte(out), &es); err != nil {
		g.t.Fatalf("inbox output: %v\n%s", err, out)
	}
	return es
}

// echoes counts inbox messages with exactly this text from the echo number.
func (g *gateway) echoes(text string) (n int, e inboxEntry) {
	for _, m := range g.inbox() {
		if m.Peer == "+15555550100" && m.Text != nil && *m.Text == text {
			n++
			e = m
		}
	}
	return n, e
}

func (g *gateway) waitDelivered(id string) shown {
	g.t.Helper()
	return g.waitState(id, "delivered")
}

func (g *gateway) waitState(id, state string) shown {
	g.t.Helper()
	var s shown
	waitFor(g.t, "message "+id+" "+state, 20*time.Second, func() bool {
		s = g.show(id)
		return s.State == state
	})
	return s
}

func (g *gateway) waitEcho(text string) inboxEntry {
	g.t.Helper()
	var e inboxEntry
	waitFor(g.t, "the echo of "+text[:min(len(text), 20)], 20*time.Second, func() bool {
		n, m := g.echoes("echo: " + text)
		e = m
		return n > 0
	})
	return e
}

// TestFirstRunOnDefaults is the README's first command: outpost run in an
// empty folder, no config.
func TestFirstRunOnDefaults(t *testing.T) {
	if c, err := net.Dial("tcp", "127.0.0.1:1883"); err == nil {
		c.Close()
		t.Skip("127.0.0.1:1883 is taken; the defaults need it")
	}
	dir := t.TempDir()
	began := time.Now()
	d := start(t, dir, nil, "run")
	waitFor(t, "the daemon to answer", 10*time.Second, func() bool {
		_, _, code := cli(t, dir, "status")
		return code == 0
	})
	if took := time.Since(began); took > 2*time.Second {
		t.Errorf("daemon took %s to start (want under 2s)", took)
	}
	g := &gateway{t: t, dir: dir, d: d}
	id := g.send("hi")
	s := g.waitDelivered(id)
	if !slices.ContainsFunc(s.Events, func(e struct{ State, Detail string }) bool { return strings.Contains(e.Detail, "(TP-ST 0)") }) {
		t.Errorf("delivered without a status report: %+v", s.Events)
	}
	g.waitEcho("hi")
	if _, err := os.Stat(filepath.Join(dir, "outpost-data", "outpost.db")); err != nil {
		t.Errorf("no database in ./outpost-data: %v", err)
	}
	out, _, code := cli(t, dir, "status", "--json")
	if code != 0 || !strings.Contains(out, `"state": "ready"`) {
		t.Errorf("status: %d %s", code, out)
	}
}

func TestSendLongAndEmoji(t *testing.T) {
	g := newGateway(t, "")
	g.start()
	long := strings.Repeat("The quick brown fox jumps over the lazy dog. ", 9)[:400]
	emoji := "Clinic supplies arrived 📦✅ thank you 🙏 " + strings.Repeat("🌍", 30)
	for _, c := range []struct {
		text  string
		parts int
	}{{long, 3}, {emoji, 2}} {
		id := g.send(c.text)
		s := g.waitDelivered(id)
		e := g.waitEcho(c.text)
		if e.Parts < c.parts {
			t.Errorf("echo of %d chars came in %d parts, want at least %d", len(c.text), e.Parts, c.parts)
		}
		found := false
		for _, ev := range s.Events {
			found = found || strings.Contains(ev.Detail, fmt.Sprintf("part %d/%d accepted", c.parts, c.parts))
		}
		if !found {
			t.Errorf("message was not sent as %d parts: %+v", c.parts, s.Events)
		}
	}
}

func TestSendRejectsBadInput(t *testing.T) {
	g := newGateway(t, "")
	g.start()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"send", "--to", "+1555abc", "--text", "x"}, "bad phone number"},
		{[]string{"send", "--to", "+15555550100", "--text", ""}, "--text is empty"},
		{[]string{"send", "--text", "x"}, "--to is required"},
	} {
		_, errs, code := g.cli(c.args...)
		if code == 0 || !strings.Contains(errs, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want non-zero and %q", c.args, code, errs, c.want)
		}
	}
	_, errs, code := g.cli("show", "nope")
	if code == 0 || !strings.Contains(errs, "no message") {
		t.Errorf("show unknown id: %d %q", code, errs)
	}
}

func TestStatusWithoutDaemon(t *testing.T) {
	dir := t.TempDir()
	_, errs, code := cli(t, dir, "status")
	if code == 0 || !strings.Contains(errs, "no daemon is running") {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
}

func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.toml")
	os.WriteFile(good, []byte("gateway_id = \"gw1\"\n[[modem]]\ntype = \"sim\"\n"), 0o600)
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("gateway_id = \"gw1\"\n[mqtt]\nlisten = \"0.0.0.0:1883\"\nallow_anonymous = true\nport = 1\n"), 0o600)
	if _, errs, code := cli(t, dir, "config", "check", good); code != 0 {
		t.Errorf("good config: %d %s", code, errs)
	}
	_, errs, code := cli(t, dir, "config", "check", bad)
	if code != 1 || !strings.Contains(errs, `unknown key "mqtt.port"`) {
		t.Errorf("bad config: %d %s", code, errs)
	}
	for _, sub := range []string{"run", "send", "show", "retry", "cancel", "inbox", "status", "sim"} {
		out, errs, code := cli(t, dir, sub, "--help")
		if code != 0 || !strings.Contains(out+errs, "usage: outpost "+sub) {
			t.Errorf("%s --help: %d %q", sub, code, out+errs)
		}
	}
}

// simModem runs "outpost sim" on a pty in dir and returns its device path.
func simModem(t *testing.T, dir string) (string, *proc) {
	path := filepath.Join(dir, "modem.pty")
	p := start(t, dir, nil, "sim", "--pty", path)
	waitFor(t, "the simulated modem's pty", 10*time.Second, func() bool {
		_, err := os.Stat(path)
		return err == nil
	})
	return path, p
}

// TestCrashAfterCommitBeforeDelete kills the daemon right after an inbound
// message is committed and before it is deleted from the SIM. What a user
// sees: after the restart the message is read from the SIM again,
// recognised, deleted, and shown once; nothing is lost.
func TestCrashAfterCommitBeforeDelete(t *testing.T) {
	g := crashingGateway(t, "after-commit-before-ack")
	// No status report: the echo is then the only inbound message, so it
	// is the one the daemon dies on.
	id := g.send("crash test one", "--no-report")
	first := g.waitCrash()
	g.start()
	g.waitState(id, "sent")
	g.waitEcho("crash test one")
	committed := regexp.MustCompile(`msg=received .*msg_id=(\S+)`).FindStringSubmatch(first)
	if committed == nil {
		t.Fatalf("the first run committed nothing before its crash:\n%s", first)
	}
	waitFor(t, "the re-read message to be recognised", 10*time.Second, func() bool {
		return strings.Contains(g.d.out.String(), `msg="duplicate inbound message ignored" modem=m1 msg_id=`+committed[1])
	})
	if n, _ := g.echoes("echo: crash test one"); n != 1 {
		t.Fatalf("echo appears %d times, want once", n)
	}
}

// The same crash when a status report and the echo both come in: the
// daemon dies on whichever is committed first. What a user sees: the
// message ends delivered, the echo shows once.
func TestCrashAfterCommitBeforeDeleteWithReport(t *testing.T) {
	g := crashingGateway(t, "after-commit-before-ack")
	id := g.send("crash test three")
	g.waitCrash()
	g.start()
	g.waitDelivered(id)
	g.waitEcho("crash test three")
	time.Sleep(time.Second) // a few more re-reads would show up as copies
	if n, _ := g.echoes("echo: crash test three"); n != 1 {
		t.Fatalf("echo appears %d times, want once", n)
	}
}

// crashingGateway starts a daemon, on a modem served by a separate
// "outpost sim" (so the SIM's contents outlive the daemon), that kills
// itself at the named crash point.
func crashingGateway(t *testing.T, point string) *gateway {
	dev, _ := simModem(t, t.TempDir())
	g := newGateway(t, dev)
	g.start("OUTPOST_CRASH_AT=" + point)
	return g
}

// waitCrash waits for the daemon to kill itself at its crash point and
// returns its output.
func (g *gateway) waitCrash() string {
	g.t.Helper()
	select {
	case <-g.d.done:
	case <-time.After(20 * time.Second):
		g.t.Fatal("daemon did not crash at the crash point")
	}
	out := g.d.out.String()
	if !strings.Contains(out, "crashing on purpose") {
		g.t.Fatalf("daemon died elsewhere:\n%s", out)
	}
	return out
}

// TestCrashAfterSendBeforeCommit kills the daemon after the modem accepted
// a part (+CMGS) and before that was committed. What a user sees: the
// message is sent again after the restart (at-least-once), so the
// recipient gets it twice; its history says why; it ends delivered.
func TestCrashAfterSendBeforeCommit(t *testing.T) {
	g := crashingGateway(t, "after-cmgs-before-commit")
	id := g.send("crash test two")
	g.waitCrash()
	g.start()
	s := g.waitDelivered(id)
	retried := false
	for _, e := range s.Events {
		retried = retried || strings.Contains(e.Detail, "may arrive twice")
	}
	// Two attempts: the one the crash cut short and the retry (a third
	// only if the loaded machine timed a command out in between).
	if !retried || s.Deliveries[0].Attempts < 2 {
		t.Fatalf("history does not show the retry after the crash: %+v", s)
	}
	waitFor(t, "both echoes", 20*time.Second, func() bool {
		n, _ := g.echoes("echo: crash test two")
		return n == 2
	})
}

// TestQueuedSendsSurviveRestart: messages queued while the modem is
// unplugged go out after a daemon restart.
func TestModemUnpluggedAndBack(t *testing.T) {
	simDir := t.TempDir()
	dev, simProc := simModem(t, simDir)
	g := newGateway(t, dev)
	g.start()
	simProc.kill() // unplug
	waitFor(t, "status to show the modem disconnected", 15*time.Second, func() bool {
		out, _, _ := g.cli("status", "--json")
		return strings.Contains(out, `"state": "disconnected"`) || strings.Contains(out, `"state": "connecting"`)
	})
	id := g.send("sent while unplugged")
	// Restart the daemon too: the queued message must survive it.
	g.d.kill()
	g.start()
	simModem(t, simDir) // plugged back in at the same path
	waitFor(t, "the modem to come back", 20*time.Second, func() bool {
		out, _, _ := g.cli("status", "--json")
		return strings.Contains(out, `"state": "ready"`)
	})
	g.waitDelivered(id)
	g.waitEcho("sent while unplugged")
	if !strings.Contains(g.d.out.String(), "modem") {
		t.Fatal("nothing logged about the modem")
	}
}

// gammuConfig writes a Gammu config in dir for the AT modem at dev.
func gammuConfig(t *testing.T, dir, dev string) string {
	t.Helper()
	rc := filepath.Join(dir, "gammurc")
	if err := os.WriteFile(rc, []byte(fmt.Sprintf("[gammu]\ndevice = %s\nconnection = at\n", dev)), 0o600); err != nil {
		t.Fatal(err)
	}
	return rc
}

// TestGammuAgainstSim points a real AT client, Gammu, at "outpost sim".
func TestGammuAgainstSim(t *testing.T) {
	gammu := needTool(t, "gammu")
	dir := t.TempDir()
	dev, _ := simModem(t, dir)
	rc := gammuConfig(t, dir, dev)
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(gammu, append([]string{"-c", rc}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("gammu %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	id := run("identify")
	for _, want := range []string{"Outpost", "SIM900", "350015555550123"} {
		if !strings.Contains(id, want) {
			t.Errorf("gammu identify lacks %q:\n%s", want, id)
		}
	}
	run("sendsms", "TEXT", "+15555550100", "-text", "hello from gammu")
	var all string
	waitFor(t, "gammu getallsms to list the echo", 20*time.Second, func() bool {
		all = run("getallsms")
		return strings.Contains(all, "echo: hello from gammu")
	})
	if !strings.Contains(all, "+15555550100") {
		t.Errorf("getallsms does not name the sender:\n%s", all)
	}
}

// subscribe connects a paho client to the local broker and subscribes to
// everything of the gateway; the client disconnects when the test ends.
func (g *gateway) subscribe(clientID string) (pahomqtt.Client, chan pahomqtt.Message) {
	t := g.t
	t.Helper()
	got := make(chan pahomqtt.Message, 100)
	opts := pahomqtt.NewClientOptions().AddBroker("tcp://" + g.mqtt).SetClientID(clientID).SetCleanSession(true)
	opts.SetDefaultPublishHandler(func(_ pahomqtt.Client, m pahomqtt.Message) { got <- m })
	c := pahomqtt.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	subscribeOK(t, c, "outpost/gw1/#")
	return c, got
}

// subscribeOK subscribes c to filter (QoS 1, the default handler) and
// fails the test unless the broker grants it: a refusal comes in the
// SUBACK's codes, not as an error.
func subscribeOK(t *testing.T, c pahomqtt.Client, filter string) {
	t.Helper()
	tok := c.Subscribe(filter, 1, nil)
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe %s: %v", filter, tok.Error())
	}
	if granted := tok.(*pahomqtt.SubscribeToken).Result()[filter]; granted > 2 {
		t.Fatalf("subscribe %s: refused with code %#x", filter, granted)
	}
}

// publishJSON publishes payload on topic with QoS 1 and waits for the PUBACK.
func publishJSON(t *testing.T, c pahomqtt.Client, topic, payload string) {
	t.Helper()
	if tok := c.Publish(topic, 1, false, payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
}

// topics hands out the messages a subscriber got, by topic: next returns
// the oldest one not yet taken whose topic matches; the others wait for
// their own call.
type topics struct {
	t    *testing.T
	got  chan pahomqtt.Message
	seen []pahomqtt.Message
}

func (b *topics) next(what string, match func(topic string) bool) map[string]any {
	b.t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		for i, m := range b.seen {
			if match(m.Topic()) {
				b.seen = slices.Delete(b.seen, i, i+1)
				var v map[string]any
				if err := json.Unmarshal(m.Payload(), &v); err != nil {
					b.t.Fatalf("%s: not JSON: %s", m.Topic(), m.Payload())
				}
				return v
			}
		}
		select {
		case m := <-b.got:
			b.seen = append(b.seen, m)
		case <-deadline:
			var topics []string
			for _, m := range b.seen {
				topics = append(topics, m.Topic()+" "+string(m.Payload()))
			}
			b.t.Fatalf("nothing on %s (got only %q)", what, topics)
		}
	}
}

// TestMQTTTopicAPI is acceptance 3: a LAN client sends over the local
// broker and follows the message to its echo.
func TestMQTTTopicAPI(t *testing.T) {
	g := newGateway(t, "")
	g.start()
	c, got := g.subscribe("phone1")
	publish := func(payload string) { t.Helper(); publishJSON(t, c, "outpost/gw1/sms/send", payload) }
	in := &topics{t: t, got: got}
	next := func(suffix string) map[string]any {
		t.Helper()
		return in.next("…"+suffix, func(topic string) bool { return strings.HasSuffix(topic, suffix) })
	}
	// The gateway's retained status, as on the hub.
	status := make(chan string, 1)
	if tok := c.Subscribe("outpost/gw1/status", 1, func(_ pahomqtt.Client, m pahomqtt.Message) {
		select {
		case status <- string(m.Payload()):
		default:
		}
	}); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	select {
	case s := <-status:
		if s != "online" {
			t.Errorf("outpost/gw1/status %q", s)
		}
	case <-time.After(5 * time.Second):
		t.Error("no retained outpost/gw1/status on the local broker")
	}
	if st := next("modem/sim0/status"); st["state"] != "ready" && st["state"] != "connecting" {
		t.Errorf("retained modem status: %v", st)
	}

	for _, c := range []struct{ payload, want string }{
		{`{"to": "+15555550100", "text": "x"`, "bad JSON"},
		{`{"to": "+1555abc", "text": "x"}`, "bad phone number"},
		{`{"to": "+15555550100", "text": ""}`, "empty"},
		{`{"text": "x"}`, `"to" is missing`},
	} {
		publish(c.payload)
		r := next("sms/send/reply")
		if r["ok"] != false || !strings.Contains(fmt.Sprint(r["error"]), c.want) {
			t.Errorf("%s: reply %v, want ok:false naming %q", c.payload, r, c.want)
		}
	}

	publish(`{"to":"+15555550100","text":"via mqtt"}`)
	r := next("sms/send/reply")
	id, _ := r["id"].(string)
	if r["ok"] != true || id == "" {
		t.Fatalf("reply %v", r)
	}
	var states []string
	for len(states) == 0 || states[len(states)-1] != "delivered" {
		s := next("sms/status/" + id)
		if s["id"] != id || s["to"] != "+15555550100" || s["at"] == nil {
			t.Errorf("status payload %v", s)
		}
		states = append(states, s["state"].(string))
	}
	if !slices.Contains(states, "sent") {
		t.Errorf("states %v skip sent", states)
	}
	echo := next("sms/in")
	// "to" is the receiving modem's own number (the default simulated
	// SIM's), "modem" its id.
	if echo["text"] != "echo: via mqtt" || echo["from"] != "+15555550100" || echo["id"] == "" || echo["to"] != "+15555550123" || echo["modem"] != "sim0" {
		t.Errorf("sms/in %v", echo)
	}
	// The rejected requests stored nothing: one message out, one echo in.
	if s := g.show(id); s.State != "delivered" {
		t.Errorf("show %s: %+v", id, s)
	}
	if es := g.inbox(); len(es) != 1 {
		t.Errorf("inbox has %d messages, want the one echo: %+v", len(es), es)
	}
}
