package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// countLines counts the lines of s that contain every one of subs.
func countLines(s string, subs ...string) int {
	n := 0
	for _, l := range strings.Split(s, "\n") {
		all := true
		for _, sub := range subs {
			all = all && strings.Contains(l, sub)
		}
		if all {
			n++
		}
	}
	return n
}

func (g *gateway) registered() bool {
	g.t.Helper()
	out, errs, code := g.cli("status", "--json")
	if code != 0 {
		g.t.Fatalf("status: exit %d: %s", code, errs)
	}
	var st struct {
		Modems map[string]struct{ Registered bool } `json:"modems"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		g.t.Fatalf("status: %v\n%s", err, out)
	}
	return st.Modems["m1"].Registered
}

func hasEvent(s shown, sub string) bool {
	for _, e := range s.Events {
		if strings.Contains(e.State+": "+e.Detail, sub) {
			return true
		}
	}
	return false
}

// TestOutageKeepsAttempts runs the real AT code on a pty against the
// simulated network: a message sent while the network is gone for far
// longer than ten retries' worth of backoff (retries here every 20–100 ms)
// is still queued with its attempts not used up, and goes out once
// registration returns; the same for an SMSC that answers busy (+CMS
// ERROR: 512) to a dozen tries. Then retry and cancel from the CLI.
func TestOutageKeepsAttempts(t *testing.T) {
	dir := t.TempDir()
	dev, sim := controlledSim(t, dir)
	g := newGateway(t, dev)
	g.start("OUTPOST_RETRY=20ms,100ms")
	control := func(line string) {
		t.Helper()
		if _, err := fmt.Fprintln(sim.stdin, line); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the modem to register", 20*time.Second, g.registered)

	// No network: the first try is refused with 331 (not counted), the
	// modem reads its registration, and the dispatcher waits for it.
	control("network off")
	id := g.send("through the outage")
	waitFor(t, "the gateway to see the modem is not registered", 20*time.Second, func() bool { return !g.registered() })
	// The modem asks for registration about once a second while it waits:
	// four answers are four seconds, far more than ten retries' worth.
	asked := countLines(sim.out.String(), "registration asked: not registered")
	var s shown
	waitFor(t, "four registration polls (or the message failing)", 30*time.Second, func() bool {
		s = g.show(id)
		return s.State == "failed" || countLines(sim.out.String(), "registration asked: not registered") >= asked+4
	})
	if s.State != "queued" || s.Deliveries[0].Attempts != 0 {
		t.Fatalf("during the outage: state %s, attempts %d (want queued, 0); history %+v", s.State, s.Deliveries[0].Attempts, s.Events)
	}
	control("network on")
	s = g.waitDelivered(id)
	if s.Deliveries[0].Attempts != 1 || !hasEvent(s, "not counted: sms is unavailable") {
		t.Errorf("after the outage: attempts %d (want 1); history %+v", s.Deliveries[0].Attempts, s.Events)
	}

	// SMSC busy: registered, but every send answered 512. The dispatcher
	// probes with backoff; a dozen refusals use up nothing.
	control("send-error 512")
	id = g.send("smsc busy")
	refused := countLines(sim.out.String(), "send refused", "512")
	waitFor(t, "twelve refusals (or the message failing)", 30*time.Second, func() bool {
		s = g.show(id)
		return s.State == "failed" || countLines(sim.out.String(), "send refused", "512") >= refused+12
	})
	if s.State == "failed" || s.Deliveries[0].Attempts > 1 {
		t.Fatalf("after 12 refusals: state %s, attempts %d (want not failed, at most the one in progress); history %+v", s.State, s.Deliveries[0].Attempts, s.Events)
	}
	control("send-error 0")
	s = g.waitDelivered(id)
	if s.Deliveries[0].Attempts != 1 {
		t.Errorf("attempts %d after the SMSC was back, want 1", s.Deliveries[0].Attempts)
	}

	// A message the network says is bad (+CMS ERROR: 21) fails at once;
	// outpost retry puts it back with its attempts reset.
	control("send-error 21")
	id = g.send("rejected once")
	g.waitState(id, "failed")
	control("send-error 0")
	if out, errs, code := g.cli("retry", id); code != 0 {
		t.Fatalf("retry: exit %d: %s%s", code, out, errs)
	}
	s = g.waitDelivered(id)
	if s.Deliveries[0].Attempts != 1 || !hasEvent(s, "queued: retried by outpost retry") || !hasEvent(s, "attempts reset to 0 (were 1)") {
		t.Errorf("after retry: attempts %d; history %+v", s.Deliveries[0].Attempts, s.Events)
	}
	if _, errs, code := g.cli("retry", id); code != 1 || !strings.Contains(errs, "only a failed or expired message can be retried") {
		t.Errorf("retry of a delivered message: exit %d, %q", code, errs)
	}
	if _, errs, code := g.cli("retry", "nosuchid"); code != 1 || !strings.Contains(errs, `no message with id "nosuchid"`) {
		t.Errorf("retry of an unknown id: exit %d, %q", code, errs)
	}

	// Cancel a message waiting for the network: cancelled, final; it is
	// not sent when the network returns.
	control("network off")
	id = g.send("never mind")
	waitFor(t, "the gateway to see the modem is not registered", 20*time.Second, func() bool { return !g.registered() })
	waitFor(t, "the message back in the queue", 20*time.Second, func() bool { return g.show(id).State == "queued" })
	if out, errs, code := g.cli("cancel", id, "--by", "the night nurse"); code != 0 || !strings.Contains(out, "cancelled") {
		t.Fatalf("cancel: exit %d: %s%s", code, out, errs)
	}
	if _, errs, code := g.cli("cancel", id); code != 1 || !strings.Contains(errs, "only a queued or scheduled message can be cancelled") {
		t.Errorf("cancel twice: exit %d, %q", code, errs)
	}
	control("network on")
	after := g.send("after the cancel")
	g.waitDelivered(after)
	s = g.show(id)
	if s.State != "cancelled" || !hasEvent(s, "cancelled: cancelled by the night nurse") {
		t.Errorf("cancelled message: %+v", s)
	}
	out, _, _ := g.cli("show", id)
	if !strings.Contains(out, "cancelled by the night nurse") {
		t.Errorf("show does not say who cancelled it:\n%s", out)
	}
}
