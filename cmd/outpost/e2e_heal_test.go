package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outpost-sms/outpost/pdu"
)

// newGatewayModem is newGatewayWith with the [[modem]] table given whole.
func newGatewayModem(t *testing.T, modem string) *gateway {
	t.Helper()
	g := newGatewayWith(t, "", "")
	cfg, err := os.ReadFile(g.config)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(cfg), "[[modem]]\nid = \"sim0\"\ntype = \"sim\"\n", "[sms]\nhistory_every = \"1s\"\n"+modem, 1)
	if err := os.WriteFile(g.config, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return g
}

type modemReport struct {
	ID, Device, IMEI, ICCID, State, Registration string
	LastReset                                    string `json:"last_reset"`
	LastError                                    string `json:"last_error"`
	Signal, Hangs, Resets                        int
	Trend                                        struct{ Samples, Min, Avg, Max int }
	Today                                        struct{ Sent, Parts, Failed, Received int }
	Changes                                      []struct{ State string }
}

func (g *gateway) modems() []modemReport {
	g.t.Helper()
	out, errs, code := g.cli("modems", "--json")
	if code != 0 {
		g.t.Fatalf("modems: exit %d: %s", code, errs)
	}
	var ms []modemReport
	if err := json.Unmarshal([]byte(out), &ms); err != nil {
		g.t.Fatalf("modems: %v\n%s", err, out)
	}
	return ms
}

func (g *gateway) ready() bool {
	ms := g.modems()
	return len(ms) == 1 && ms[0].State == "ready" && (ms[0].Registration == "home" || ms[0].Registration == "roaming")
}

func simControl(t *testing.T, p *proc) func(string) {
	return func(line string) {
		t.Helper()
		if _, err := fmt.Fprintln(p.stdin, line); err != nil {
			t.Fatal(err)
		}
	}
}

// A modem configured by IMEI is found on its pty; unplugged and plugged
// back in at another path (USB ports renumbered), it is found again there,
// and what waited for it goes out.
func TestModemFoundByIMEIAfterMove(t *testing.T) {
	dir := t.TempDir()
	_, simProc := controlledSim(t, dir)
	control := simControl(t, simProc)
	g := newGatewayModem(t, fmt.Sprintf("[[modem]]\nid = \"m1\"\ntype = \"serial\"\nimei = \"350015555550123\"\nscan = [%q]\ncommand_timeout = \"2s\"\nsweep_interval = \"2s\"\n",
		filepath.Join(dir, "*.pty")))
	g.start()
	waitFor(t, "the modem found by IMEI", 20*time.Second, g.ready)
	if m := g.modems()[0]; m.Device != filepath.Join(dir, "modem.pty") || m.IMEI != "350015555550123" {
		t.Fatalf("bound to %q (IMEI %s)", m.Device, m.IMEI)
	}
	g.waitDelivered(g.send("before the move"))

	control("unplug")
	waitFor(t, "the unplug seen", 20*time.Second, func() bool { return g.modems()[0].State != "ready" })
	id := g.send("sent while unplugged")
	waitFor(t, "the search to say what it looked for", 20*time.Second, func() bool {
		return strings.Contains(g.modems()[0].LastError, "no port")
	})
	moved := filepath.Join(dir, "moved.pty")
	control("replug " + moved)
	waitFor(t, "the modem found again", 30*time.Second, g.ready)
	if m := g.modems()[0]; m.Device != moved {
		t.Errorf("found again at %q, want %s", m.Device, moved)
	}
	g.waitDelivered(id)
	for _, text := range []string{"before the move", "sent while unplugged"} {
		g.waitEcho(text)
		if n, _ := g.echoes("echo: " + text); n != 1 {
			t.Errorf("%q echoed %d times, want once", text, n)
		}
	}
	// The scan shows the port the daemon holds without probing it.
	out, errs, code := cli(t, dir, "modems", "scan", "--glob", filepath.Join(dir, "*.pty"))
	if code != 0 || !strings.Contains(out, "moved.pty") || !strings.Contains(out, "a running outpost daemon's modem") || strings.Contains(out, "350015555550123") {
		t.Errorf("modems scan while the daemon holds the port: exit %d\n%s%s", code, out, errs)
	}
}

// A modem that stops answering mid-send is reset with AT+CFUN=1,1 and
// comes back; the message goes out once; outpost modems shows the hang,
// the reset and the history of states.
func TestHungModemResetAndBack(t *testing.T) {
	dir := t.TempDir()
	dev, simProc := controlledSim(t, dir)
	control := simControl(t, simProc)
	g := newGatewayModem(t, fmt.Sprintf("[[modem]]\nid = \"m1\"\ntype = \"serial\"\ndevice = %q\ncommand_timeout = \"1s\"\nsend_timeout = \"3s\"\nsweep_interval = \"2s\"\n", dev))
	g.start("OUTPOST_RETRY=100ms,500ms")
	waitFor(t, "the modem ready", 20*time.Second, g.ready)
	control("reset-delay 500ms")
	control("hang on")
	id := g.send("through the hang")
	var m modemReport
	waitFor(t, "the reset", 40*time.Second, func() bool {
		m = g.modems()[0]
		return m.Resets > 0
	})
	if !strings.Contains(m.LastReset, "AT+CFUN=1,1: sent") || m.Hangs < 2 {
		t.Errorf("after the reset: %+v", m)
	}
	if !strings.Contains(simProc.out.String(), "sim: reset (AT+CFUN=1,1)") {
		t.Error("the simulator saw no AT+CFUN=1,1")
	}
	waitFor(t, "the modem back", 30*time.Second, g.ready)
	g.waitDelivered(id)
	g.waitEcho("through the hang")
	if n, _ := g.echoes("echo: through the hang"); n != 1 {
		t.Errorf("echoed %d times, want once", n)
	}
	m = g.modems()[0]
	states := map[string]bool{}
	for _, c := range m.Changes {
		states[c.State] = true
	}
	if !states["ready"] || !(states["disconnected"] || states["connecting"]) || m.Trend.Samples == 0 || m.Today.Sent != 1 {
		t.Errorf("history: changes %+v, trend %+v, today %+v", m.Changes, m.Trend, m.Today)
	}
	out, _, _ := g.cli("modems")
	for _, want := range []string{"m1  ready", "IMEI 350015555550123", "hangs ", "resets 1; last: AT+CFUN=1,1: sent", "today: 1 sent"} {
		if !strings.Contains(out, want) {
			t.Errorf("outpost modems lacks %q:\n%s", want, out)
		}
	}
}

// TestFaultMatrix is acceptance 6: each fault of the field while a
// message is sent, while one is received, and while idle. Every message
// ends in a final or queued state that outpost show explains; none is
// lost, none duplicated.
func TestFaultMatrix(t *testing.T) {
	dir := t.TempDir()
	dev, simProc := controlledSim(t, dir)
	control := simControl(t, simProc)
	g := newGatewayModem(t, fmt.Sprintf("[[modem]]\nid = \"m1\"\ntype = \"serial\"\ndevice = %q\ncommand_timeout = \"1s\"\nsend_timeout = \"4s\"\nsweep_interval = \"2s\"\nresets_per_hour = 100\n", dev))
	g.start("OUTPOST_RETRY=100ms,500ms")
	waitFor(t, "the modem ready", 20*time.Second, g.ready)
	control("reset-delay 300ms")
	faults := []struct{ name, on, off string }{
		{"hang", "hang on", "hang off"},
		{"garbage", "garbage on", "garbage off"},
		{"unplug", "unplug", "replug"},
		{"deregistered", "registration none", "registration on"},
		{"denied", "registration denied", "registration on"},
		{"cms322", "send-error 322", "send-error 0"},
		{"cms500", "send-error 500", "send-error 0"},
		{"cms512", "send-error 512", "send-error 0"},
		{"cms513", "send-error 513", "send-error 0"},
		{"slow", "slow-send 2s", "slow-send 0s"},
	}
	const phone = "+15550007777"
	var sent, received []string // texts
	ref := 0
	inbound := func(text string) int {
		n := 0
		for _, m := range g.inbox() {
			if m.Peer == phone && m.Text != nil && *m.Text == text {
				n++
			}
		}
		return n
	}
	for _, f := range faults {
		for _, phase := range []string{"send", "receive", "idle"} {
			text := f.name + " during " + phase
			control(f.on)
			var id string
			switch phase {
			case "send":
				refused := countLines(simProc.out.String(), "send refused")
				id = g.send(text)
				if strings.HasPrefix(f.name, "cms") {
					// Cleared once refused: a refusal that counts (500)
					// must not use up every attempt.
					waitFor(t, "a refusal", 20*time.Second, func() bool { return countLines(simProc.out.String(), "send refused") > refused })
				} else {
					time.Sleep(time.Second)
				}
			case "receive":
				ref++
				for _, p := range phoneParts(t, phone, pdu.Outgoing{Text: text}, ref) {
					control("deliver " + p)
				}
				time.Sleep(time.Second)
			case "idle":
				time.Sleep(time.Second)
			}
			control(f.off)
			waitFor(t, "the modem ready after "+text, 40*time.Second, g.ready)
			// Settled before the next fault, so each fault is judged alone.
			switch phase {
			case "send":
				var s shown
				waitFor(t, text+" to settle", 40*time.Second, func() bool {
					s = g.show(id)
					return s.State == "delivered" || s.State == "failed"
				})
				out, _, _ := g.cli("show", id)
				if s.State != "delivered" || !strings.Contains(out, "part 1/1 accepted") {
					t.Errorf("%s: %s\n%s", text, s.State, out)
				}
				g.waitEcho(text)
				sent = append(sent, text)
			case "receive":
				waitFor(t, "the inbound "+text, 40*time.Second, func() bool { return inbound(text) > 0 })
				received = append(received, text)
			}
		}
	}
	time.Sleep(2 * time.Second) // a copy would have come in by now
	for _, text := range sent {
		if n, _ := g.echoes("echo: " + text); n != 1 {
			t.Errorf("%s echoed %d times, want once", text, n)
		}
	}
	for _, text := range received {
		if n := inbound(text); n != 1 {
			t.Errorf("inbound %q stored %d times, want once", text, n)
		}
	}
	m := g.modems()[0]
	t.Logf("after the matrix: hangs %d, resets %d (last: %s)", m.Hangs, m.Resets, m.LastReset)
	if m.Resets == 0 {
		t.Error("no reset in a matrix with a hung and a garbled modem")
	}
}

// TestGammuNetworkInfoAgainstSim: Gammu's networkinfo reads registration,
// cell, operator and packet attach from "outpost sim".
func TestGammuNetworkInfoAgainstSim(t *testing.T) {
	gammu := needTool(t, "gammu")
	dir := t.TempDir()
	dev, simProc := controlledSim(t, dir)
	rc := gammuConfig(t, dir, dev)
	run := func() string {
		t.Helper()
		out, err := exec.Command(gammu, "-c", rc, "networkinfo").CombinedOutput()
		if err != nil {
			t.Fatalf("gammu networkinfo: %v\n%s", err, out)
		}
		return string(out)
	}
	out := run()
	for _, want := range []string{"Network state        : home network", "001 01", "LAC 00A1, CID 1B3F", `Name in phone        : "Outpost Sim"`, "GPRS                 : attached"} {
		if !strings.Contains(out, want) {
			t.Errorf("gammu networkinfo lacks %q:\n%s", want, out)
		}
	}
	simControl(t, simProc)("registration denied")
	time.Sleep(200 * time.Millisecond)
	if out := run(); !strings.Contains(out, "Network state        : registration to network denied") {
		t.Errorf("gammu networkinfo on a denied modem:\n%s", out)
	}
}

// outpost modems scan, with no daemon: every port of the pattern, whether
// it answers AT, and who is behind it; a port another program has open is
// named and left alone.
func TestModemsScanWithoutDaemon(t *testing.T) {
	dir := t.TempDir()
	simModem(t, dir)
	glob := filepath.Join(dir, "*.pty")
	out, errs, code := cli(t, dir, "modems", "scan", "--glob", glob)
	if code != 0 || !strings.Contains(out, "modem.pty") || !strings.Contains(out, "350015555550123") ||
		!strings.Contains(out, "8900101015555550123F") || !strings.Contains(out, "Outpost Sim") {
		t.Fatalf("scan: exit %d\n%s%s", code, out, errs)
	}
	tty, err := os.OpenFile(filepath.Join(dir, "modem.pty"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	holder := exec.Command("sleep", "30")
	holder.Stdin = tty
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	tty.Close()
	t.Cleanup(func() { holder.Process.Kill(); holder.Wait() })
	out, errs, code = cli(t, dir, "modems", "scan", "--glob", glob, "--json")
	var ports []struct {
		Path, IMEI, Busy string
		AT               bool
	}
	if err := json.Unmarshal([]byte(out), &ports); err != nil || code != 0 || len(ports) != 1 {
		t.Fatalf("scan --json: exit %d, %v\n%s%s", code, err, out, errs)
	}
	if p := ports[0]; p.AT || p.IMEI != "" || !strings.Contains(p.Busy, fmt.Sprintf("sleep (pid %d); not probed", holder.Process.Pid)) {
		t.Errorf("a port open in another program: %+v", p)
	}
	if _, errs, code := cli(t, dir, "modems"); code != 1 || !strings.Contains(errs, "no daemon is running") {
		t.Errorf("modems with no daemon: exit %d, %q", code, errs)
	}
}

// The daemon's own simulated modem takes faults on its control socket:
// hung, it is reset and the message goes out once.
func TestInProcessSimControl(t *testing.T) {
	g := newGatewayModem(t, "[[modem]]\nid = \"sim0\"\ntype = \"sim\"\ncommand_timeout = \"1s\"\nsend_timeout = \"3s\"\nsweep_interval = \"2s\"\n")
	g.start("OUTPOST_RETRY=100ms,500ms")
	c, err := net.Dial("unix", filepath.Join(g.dir, "data", "sim-sim0.control"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	say := func(line string) string {
		t.Helper()
		fmt.Fprintln(c, line)
		answer, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(answer)
	}
	if a := say("unplug"); !strings.Contains(a, "error: unplug: only a modem of outpost sim can be unplugged") {
		t.Errorf("unplug: %q", a)
	}
	if a := say("hang maybe"); a != `error: hang "maybe": want on or off` {
		t.Errorf("bad line: %q", a)
	}
	waitFor(t, "the modem ready", 20*time.Second, g.ready)
	if a := say("reset-delay 300ms"); a != "ok" {
		t.Fatal(a)
	}
	if a := say("hang on"); a != "ok" {
		t.Fatal(a)
	}
	id := g.send("through the hang")
	waitFor(t, "the reset", 40*time.Second, func() bool { return g.modems()[0].Resets > 0 })
	g.waitDelivered(id)
	g.waitEcho("through the hang")
	if n, _ := g.echoes("echo: through the hang"); n != 1 {
		t.Errorf("echoed %d times", n)
	}
}
