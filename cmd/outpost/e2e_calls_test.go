package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/outpost-sms/outpost/hw"
	"github.com/outpost-sms/outpost/pdu"
)

// modemStatus is modem m1 as outpost status --json shows it.
func (g *gateway) modemStatus() hw.Status {
	g.t.Helper()
	out, errs, code := g.cli("status", "--json")
	if code != 0 {
		g.t.Fatalf("status: exit %d: %s", code, errs)
	}
	var st struct {
		Modems map[string]hw.Status `json:"modems"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		g.t.Fatalf("status: %v\n%s", err, out)
	}
	return st.Modems["m1"]
}

// TestMissedCall is acceptance 4: a call rings the gateway's modem (the
// real AT code on a pty); it is hung up after two rings (the simulated
// network saw the ATH), logged with the caller's number, and turned into
// one "missed call" message that routes like an SMS (MQTT sms/in, kind
// "call"); a second caller who gives up before the hang-up is a second
// message; the rings are never messages of their own.
func TestMissedCall(t *testing.T) {
	dir := t.TempDir()
	device, modem := controlledSim(t, dir)
	g := newGatewayWith(t, device, "calls = \"hangup\"\nhangup_after = 2\nmissed_call_message = true\n")
	g.start()
	waitFor(t, "the modem to register", 20*time.Second, g.registered)
	// Subscribed once the modem's retained status is published: mochi
	// reads it for a new subscription without its writer's lock.
	time.Sleep(500 * time.Millisecond)
	_, got := g.subscribe("calls")
	in := &topics{t: t, got: got}
	control := func(line string) {
		t.Helper()
		if _, err := fmt.Fprintln(modem.stdin, line); err != nil {
			t.Fatal(err)
		}
	}

	control("call +15555550111 8 400ms")
	m := in.next("sms/in", func(topic string) bool { return strings.HasSuffix(topic, "/sms/in") })
	if m["kind"] != "call" || m["from"] != "+15555550111" || m["text"] != "missed call from +15555550111" || m["modem"] != "m1" || m["channel"] != "sms" {
		t.Fatalf("sms/in %v", m)
	}
	waitFor(t, "the network to see the hang-up", 10*time.Second, func() bool {
		return strings.Contains(modem.out.String(), "sim: call hung up by the terminal")
	})
	if line := lineWith(modem.out.String(), "call hung up by the terminal"); !strings.Contains(line, "command=ATH") || !strings.Contains(line, "rings=2") {
		t.Errorf("the network saw: %s", line)
	}
	s := g.show(m["id"].(string))
	if !hasEvent(s, "received: call via m1, 2 ring(s), hung up by Outpost") {
		t.Errorf("history of the missed call: %+v", s.Events)
	}
	out, _, _ := g.cli("show", m["id"].(string))
	if !strings.Contains(out, "missed call from +15555550111") || !strings.Contains(out, "call") {
		t.Errorf("outpost show:\n%s", out)
	}

	// A caller who gives up after one ring (the modem says NO CARRIER).
	control("call +15555550112 1 200ms")
	m2 := in.next("sms/in", func(topic string) bool { return strings.HasSuffix(topic, "/sms/in") })
	if m2["from"] != "+15555550112" || m2["kind"] != "call" {
		t.Fatalf("second call: %v", m2)
	}
	waitFor(t, "the second caller to give up", 10*time.Second, func() bool {
		return strings.Contains(modem.out.String(), "the caller gave up")
	})
	time.Sleep(time.Second) // a ring handed up as a message of its own would show now
	calls := 0
	for _, e := range g.inbox() {
		if e.Text != nil && strings.HasPrefix(*e.Text, "missed call from") {
			calls++
		}
	}
	if calls != 2 {
		t.Errorf("%d missed-call messages, want 2 (one per call)", calls)
	}
	st := g.modemStatus()
	if st.Calls != 2 || !strings.Contains(st.LastCall, "+15555550112") || !strings.Contains(st.LastCall, "the caller gave up") {
		t.Errorf("status: calls %d, last %q", st.Calls, st.LastCall)
	}
	if text, _, _ := g.cli("status"); !strings.Contains(text, "2 call(s) since start") {
		t.Errorf("outpost status:\n%s", text)
	}
	if !strings.Contains(g.d.out.String(), `msg="incoming call" modem=m1 from=+15555550111 rings=2 hung_up=true`) {
		t.Errorf("the call is not logged with the caller's number")
	}
}

func lineWith(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}

// TestSIMStoreFull is acceptance 5: the SIM has 5 slots and its deletes
// fail, so the messages the gateway has committed stay on it and fill
// it; twelve messages come from a phone. The full store is detected
// (status), nothing more arrives while the network keeps the rest; once
// deletes work the store is cleared of the committed messages (sweeps
// are an hour apart: only the full-store handling can do it), reception
// resumes, and every message is in the inbox exactly once.
func TestSIMStoreFull(t *testing.T) {
	dir := t.TempDir()
	device, modem := controlledSim(t, dir)
	g := newGateway(t, device)
	cfg, err := os.ReadFile(g.config)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(g.config, []byte(strings.Replace(string(cfg), `sweep_interval = "2s"`, `sweep_interval = "1h"`, 1)), 0o600)
	g.start()
	waitFor(t, "the modem to register", 20*time.Second, g.registered)
	control := func(line string) {
		t.Helper()
		if _, err := fmt.Fprintln(modem.stdin, line); err != nil {
			t.Fatal(err)
		}
	}
	control("store 5")
	control("fail-delete 1000")
	const phone, n = "+15555550177", 12
	for i := range n {
		for _, part := range phoneParts(t, phone, pdu.Outgoing{Text: fmt.Sprintf("report %d from the field", i)}, i+1) {
			modem.deliver(t, part)
		}
	}
	var st hw.Status
	waitFor(t, "status to show the store full", 30*time.Second, func() bool {
		st = g.modemStatus()
		return st.Storage.Full
	})
	if st.Storage.Used != 5 || st.Storage.Total != 5 || st.Storage.TimesFull < 1 || !strings.Contains(st.Storage.Warning, "full (5 of 5)") {
		t.Errorf("full store in status: %+v", st.Storage)
	}
	waitFor(t, "the 5 messages the store holds committed", 20*time.Second, func() bool { return len(g.fromInbox(phone)) >= 5 })
	time.Sleep(time.Second) // what the network keeps must not come in yet
	if k := len(g.fromInbox(phone)); k != 5 {
		t.Errorf("%d messages in while the store is full, want the 5 it holds", k)
	}
	if text, _, _ := g.cli("status"); !strings.Contains(text, "modem m1: message store SM 5 of 5 used: message store full") {
		t.Errorf("outpost status:\n%s", text)
	}

	control("fail-delete 0")
	waitFor(t, "every message in and the store empty", 60*time.Second, func() bool {
		st = g.modemStatus()
		return len(g.fromInbox(phone)) >= n && st.Storage.Used == 0 && !st.Storage.Full
	})
	seen := map[string]int{}
	for _, e := range g.fromInbox(phone) {
		seen[*e.Text]++
	}
	for i := range n {
		if text := fmt.Sprintf("report %d from the field", i); seen[text] != 1 {
			t.Errorf("%q is in the inbox %d times, want once", text, seen[text])
		}
	}
	if len(seen) != n || st.Storage.Cleared < 1 || st.Storage.Warning != "" {
		t.Errorf("%d distinct messages; store after clearing %+v", len(seen), st.Storage)
	}
	out := g.d.out.String()
	for _, want := range []string{"message store full: reception has stopped", "clearing the full message store", "message store has room again"} {
		if !strings.Contains(out, want) {
			t.Errorf("the daemon did not log %q", want)
		}
	}
}

// TestGammuFillsSIMStore: a real AT client, Gammu, saves messages on the
// simulated SIM (AT+CMGW) until it is full, where the SIM refuses with
// +CMS ERROR: 322 as a real one does; Gammu reads the use back.
func TestGammuFillsSIMStore(t *testing.T) {
	gammu := needTool(t, "gammu")
	dir := t.TempDir()
	dev, modem := controlledSim(t, dir)
	if _, err := fmt.Fprintln(modem.stdin, "store 2"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the SIM to shrink", 10*time.Second, func() bool { return strings.Contains(modem.out.String(), "command=store") })
	rc := gammuConfig(t, dir, dev)
	run := func(args ...string) (string, error) {
		out, err := exec.Command(gammu, append([]string{"-c", rc}, args...)...).CombinedOutput()
		return string(out), err
	}
	for i := range 2 {
		if out, err := run("savesms", "TEXT", "-text", fmt.Sprintf("draft %d", i)); err != nil {
			t.Fatalf("savesms %d: %v\n%s", i, err, out)
		}
	}
	out, err := run("savesms", "TEXT", "-text", "one too many")
	if err == nil || !strings.Contains(strings.ToLower(out), "memory full") {
		t.Errorf("savesms on a full SIM: %v\n%s", err, out)
	}
	if !strings.Contains(modem.out.String(), "message store full; write refused") {
		t.Errorf("the SIM did not refuse the write")
	}
	out, err = run("monitor", "1")
	if err != nil && !strings.Contains(out, "SIM SMS status") || !strings.Contains(out, "SIM SMS status       : 2 used") || !strings.Contains(out, "2 locations") {
		t.Errorf("gammu monitor: %v\n%s", err, out)
	}
}
