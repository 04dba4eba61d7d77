package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestAutoReplyLoopTwoModems is issue 12's acceptance 3: two simulated
// modems on one simulated network (sim0 +15555550123, sim1
// +15555550124), each with a route that answers every SMS it receives.
// One SMS goes in (sent to sim1's number); it is answered once, and the
// answer's arrival is not answered: the loop stops after one answer
// (route_reply_limit 1 per route_reply_window). Sends leave through the
// first ready modem (sim0), so sim1's answer reaches sim0 from sim0's
// own number.
func TestAutoReplyLoopTwoModems(t *testing.T) {
	g := newGatewayWith(t, "", `[[modem]]
id = "sim1"
type = "sim"

[[route]]
modem = "sim0"
reply = "sim0 here, got it"

[[route]]
modem = "sim1"
reply = "sim1 here, got it"
`)
	g.start()
	// Both modems ready, so the first send leaves through sim0.
	waitFor(t, "both modems ready", 20*time.Second, func() bool {
		out, _, _ := g.cli("status", "--json")
		var st struct {
			Modems map[string]struct{ State string } `json:"modems"`
		}
		json.Unmarshal([]byte(out), &st)
		return st.Modems["sim0"].State == "ready" && st.Modems["sim1"].State == "ready"
	})
	if _, errs, code := g.cli("send", "--to", "+15555550124", "--text", "ping"); code != 0 {
		t.Fatalf("send: exit %d: %s", code, errs)
	}
	type msg struct {
		ID, Direction, Peer, Modem, Channel string
		From                                string `json:"from_addr"`
		Text                                *string
	}
	list := func() []msg {
		out, errs, code := g.cli("messages", "--json", "--limit", "100")
		if code != 0 {
			t.Fatalf("messages: exit %d: %s", code, errs)
		}
		var l struct{ Messages []msg }
		if err := json.Unmarshal([]byte(out), &l); err != nil {
			t.Fatalf("messages: %v\n%s", err, out)
		}
		return l.Messages
	}
	received := func(modem, text string) (m msg, ok bool) {
		for _, m := range list() {
			if m.Direction == "in" && m.Modem == modem && m.Text != nil && *m.Text == text {
				return m, true
			}
		}
		return m, false
	}
	// sim1 gets the ping from sim0's number and answers it.
	var ping msg
	waitFor(t, "sim1 to receive the ping", 20*time.Second, func() (ok bool) { ping, ok = received("sim1", "ping"); return ok })
	if ping.Peer != "+15555550123" {
		t.Errorf("the ping came from %q, want sim0's number", ping.Peer)
	}
	// The answer arrives on sim0, whose route would answer it in turn:
	// held back.
	var answer msg
	waitFor(t, "sim0 to receive sim1's answer", 20*time.Second, func() (ok bool) { answer, ok = received("sim0", "sim1 here, got it"); return ok })
	var held routedShown
	waitFor(t, "the answer's routes", 20*time.Second, func() bool {
		held = g.routedShow(answer.ID)
		return slices.ContainsFunc(held.Events, func(e struct{ State, Detail string }) bool { return strings.HasPrefix(e.State, "no auto-reply") })
	})
	if !slices.ContainsFunc(held.Events, func(e struct{ State, Detail string }) bool {
		return e.State == "no auto-reply" && strings.Contains(e.Detail, "route 1:") && strings.Contains(e.Detail, "(route_reply_limit)")
	}) {
		t.Errorf("the answer was not held back by route_reply_limit: %+v", held.Events)
	}
	if s := g.routedShow(ping.ID); !slices.ContainsFunc(s.Events, func(e struct{ State, Detail string }) bool { return e.State == "auto-reply" }) {
		t.Errorf("the ping got no answer: %+v", s.Events)
	}
	// One answer in all, sent; nothing else queued or going.
	var replies []msg
	for _, m := range list() {
		if m.Channel == "route" {
			replies = append(replies, m)
		}
	}
	if len(replies) != 1 || replies[0].From != "route:2" || replies[0].Peer != "+15555550123" {
		t.Fatalf("auto-replies: %+v, want one, of route 2 to +15555550123", replies)
	}
	waitFor(t, "the answer sent", 20*time.Second, func() bool {
		st := g.show(replies[0].ID).State
		return st == "sent" || st == "delivered"
	})
	for _, state := range []string{"queued", "sending", "scheduled"} {
		if out, _, _ := g.cli("messages", "--out", "--state", state, "--json"); strings.Contains(out, `"id"`) {
			t.Errorf("messages still %s:\n%s", state, out)
		}
	}
	if n := len(list()); n != 4 {
		t.Errorf("%d messages, want 4 (the ping sent and received, the answer sent and received)", n)
	}
}
