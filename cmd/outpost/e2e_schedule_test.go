package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestScheduledGroupSendThroughAPI: the send options of the topic API
// through the daemon: a send to a configured group, held until
// "not_before" (state scheduled, published on sms/status), with its reply
// on "reply_to"; and from the CLI, --at/--expires/--priority and the
// errors for impossible ones.
func TestScheduledGroupSendThroughAPI(t *testing.T) {
	g := newGatewayWith(t, "", "[groups]\nteam = [\"+15555550100\", \"+15555550101\"]\n")
	g.start()
	c, got := g.subscribe("dispatcher")
	subscribeOK(t, c, "my/replies")
	publish := func(payload string) { t.Helper(); publishJSON(t, c, "outpost/gw1/sms/send", payload) }
	in := &topics{t: t, got: got}
	await := func(topic string) map[string]any {
		t.Helper()
		return in.next(topic, func(tp string) bool { return tp == topic })
	}
	sent := time.Now()
	publish(`{"to":"group:team","text":"drill at noon","not_before":"2s","priority":7,"reply_to":"my/replies"}`)
	r := await("my/replies")
	id, _ := r["id"].(string)
	if r["ok"] != true || id == "" {
		t.Fatalf("reply %v", r)
	}
	if s := await("outpost/gw1/sms/status/" + id); s["state"] != "scheduled" {
		t.Fatalf("first status %v", s)
	}
	if s := g.show(id); s.State != "scheduled" || len(s.Deliveries) != 2 || !strings.Contains(s.Events[0].Detail, "group team: 2 numbers") {
		t.Fatalf("show %+v", s)
	}
	// The simulated network knows the echo number only: the other
	// member's SMS is reported not obtainable.
	var s shown
	waitFor(t, "both members' reports", 20*time.Second, func() bool {
		s = g.show(id)
		return len(s.Deliveries) == 2 && s.Deliveries[0].State == "delivered" && s.Deliveries[1].State == "failed"
	})
	for _, e := range s.Events {
		if e.State == "sending" && time.Since(sent) < 2*time.Second {
			t.Fatalf("sent before not_before: %+v", s.Events)
		}
	}
	out, _, _ := g.cli("show", id)
	if !strings.Contains(out, "priority:  7") || !strings.Contains(out, "not before:") {
		t.Errorf("show:\n%s", out)
	}

	for _, c := range []struct {
		payload, want string
	}{
		{`{"to":"group:nobody","text":"x"}`, `unknown group \"nobody\"`},
		{`{"to":"+15555550100","text":"x","expires":"2020-01-01T00:00:00Z"}`, "already passed"},
		{`{"to":"+15555550100","text":"x","reply_to":"my/#"}`, "wildcard"},
	} {
		publish(c.payload)
		r := await("outpost/gw1/sms/send/reply")
		if r["ok"] != false || !strings.Contains(mustJSON(r["error"]), c.want) {
			t.Errorf("%s: reply %v, want %q", c.payload, r, c.want)
		}
	}

	// The CLI: a message that can never be sent is refused with the reason.
	_, errs, code := g.cli("send", "--to", "group:team", "--text", "x", "--at", "1h", "--expires", "30m")
	if code == 0 || !strings.Contains(errs, "could never be sent") {
		t.Errorf("send --at 1h --expires 30m: exit %d, %s", code, errs)
	}
	id = g.send("soon", "--at", "1s", "--expires", "1h", "--priority", "3")
	if s := g.waitDelivered(id); len(s.Deliveries) != 1 {
		t.Errorf("show %+v", s)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestGroupRepeatedNumber: a group that lists a number twice (the echo
// subscriber) sends it one SMS; outpost send says so, and the history
// counts the number once.
func TestGroupRepeatedNumber(t *testing.T) {
	g := newGatewayWith(t, "", "[groups]\nward = [\"+15555550100\", \"+15555550100\"]\n")
	g.start()
	out, errs, code := g.cli("send", "--to", "group:ward", "--text", "ward round at 9")
	note := "group ward: 1 number; listed more than once, one delivery each: +15555550100"
	if code != 0 || !strings.Contains(errs, "note: "+note) {
		t.Fatalf("send: exit %d\n%s%s\nwant the note %q", code, out, errs, note)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	s := g.waitDelivered(lines[len(lines)-1])
	if len(s.Deliveries) != 1 || !strings.Contains(s.Events[0].Detail, note) {
		t.Errorf("show %+v", s)
	}
	g.waitEcho("ward round at 9")
	if n, _ := g.echoes("echo: ward round at 9"); n != 1 {
		t.Errorf("%d SMS went to the number, want 1", n)
	}
}
