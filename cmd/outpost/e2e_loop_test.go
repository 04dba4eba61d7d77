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
// One SMS goes from sim0 to sim1's number. An answer goes out through the
// modem its SMS came in on, so the two modems answer each other: sim1
// answers the ping (to sim0's number), sim0 answers that (to sim1's),
// and sim1's next answer, a second one to sim0's number, is held back
// (route_reply_limit 1 per route_reply_window): the loop stops after one
// answer to each number.
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
	// Both modems ready; the ping leaves through sim0 (--modem).
	waitFor(t, "both modems ready", 20*time.Second, func() bool {
		out, _, _ := g.cli("status", "--json")
		var st struct {
			Modems map[string]struct{ State string } `json:"modems"`
		}
		json.Unmarshal([]byte(out), &st)
		return st.Modems["sim0"].State == "ready" && st.Modems["sim1"].State == "ready"
	})
	if _, errs, code := g.cli("send", "--to", "+15555550124", "--text", "ping", "--modem", "sim0"); code != 0 {
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
	// The answer arrives on sim0, whose route answers it once (sim1's
	// number got no answer yet); that answer's arrival on sim1 would be
	// a second answer to sim0's number: held back.
	var answer, second msg
	waitFor(t, "sim0 to receive sim1's answer", 20*time.Second, func() (ok bool) { answer, ok = received("sim0", "sim1 here, got it"); return ok })
	waitFor(t, "sim1 to receive sim0's answer", 20*time.Second, func() (ok bool) { second, ok = received("sim1", "sim0 here, got it"); return ok })
	var held routedShown
	waitFor(t, "the second answer's routes", 20*time.Second, func() bool {
		held = g.routedShow(second.ID)
		return slices.ContainsFunc(held.Events, func(e struct{ State, Detail string }) bool { return strings.HasPrefix(e.State, "no auto-reply") })
	})
	if !slices.ContainsFunc(held.Events, func(e struct{ State, Detail string }) bool {
		return e.State == "no auto-reply" && strings.Contains(e.Detail, "route 2:") && strings.Contains(e.Detail, "(route_reply_limit)")
	}) {
		t.Errorf("the second answer was not held back by route_reply_limit: %+v", held.Events)
	}
	for _, m := range []msg{ping, answer} {
		if s := g.routedShow(m.ID); !slices.ContainsFunc(s.Events, func(e struct{ State, Detail string }) bool { return e.State == "auto-reply" }) {
			t.Errorf("%s got no answer: %+v", m.ID, s.Events)
		}
	}
	// Two answers in all, one to each number, each through the modem its
	// SMS came in on; nothing else queued or going.
	var replies []msg
	for _, m := range list() {
		if m.Channel == "route" {
			replies = append(replies, m)
		}
	}
	slices.SortFunc(replies, func(a, b msg) int { return strings.Compare(a.From, b.From) })
	if len(replies) != 2 || replies[0].From != "route:1" || replies[0].Peer != "+15555550124" || replies[1].From != "route:2" || replies[1].Peer != "+15555550123" {
		t.Fatalf("auto-replies: %+v, want route 1's to +15555550124 and route 2's to +15555550123", replies)
	}
	for _, r := range replies {
		waitFor(t, "the answer sent", 20*time.Second, func() bool {
			st := g.show(r.ID).State
			return st == "sent" || st == "delivered"
		})
	}
	for _, state := range []string{"queued", "sending", "scheduled"} {
		if out, _, _ := g.cli("messages", "--out", "--state", state, "--json"); strings.Contains(out, `"id"`) {
			t.Errorf("messages still %s:\n%s", state, out)
		}
	}
	if n := len(list()); n != 6 {
		t.Errorf("%d messages, want 6 (the ping and the two answers, each sent and received)", n)
	}
}
