package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	pahomqtt "github.com/eclipse/paho.mqtt.golang"
)

// TestHubOwnMessagesNeverRefused: with when_full = "refuse" and the queue
// to the hub full of devices' pass-through messages, Outpost's own
// messages (an inbound SMS's sms/in, its sms/status/… changes) are still
// queued, past the bound, and reach the hub once it is up: a chatty
// device must not make inbound SMS never reach the hub. They were refused
// and thrown away.
func TestHubOwnMessagesNeverRefused(t *testing.T) {
	const max = 3
	hubb := prepareHub(t, "#")
	g := newGatewayWith(t, "", fmt.Sprintf("[hub]\nurl = \"tcp://%s\"\nmax_messages = %d\nwhen_full = \"refuse\"\n[[hub.forward]]\ntopic = \"dev/#\"\nqos = 1\n", hubb.addr, max))
	g.start()
	local, _ := g.subscribe("chatty-device")
	refused := 0
	for i := 1; i <= max+2 && refused == 0; i++ {
		if tok := local.Publish("dev/a", 1, false, strconv.Itoa(i)); !tok.WaitTimeout(2 * time.Second) {
			refused = i
		}
	}
	if refused == 0 {
		t.Fatalf("the queue never refused a pass-through message past max_messages = %d", max)
	}
	id := g.send("while the queue is full")
	g.waitDelivered(id)
	g.waitEcho("while the queue is full")
	var st struct {
		Messages  int64 `json:"messages"`
		Refused   int64 `json:"refused"`
		OverBound int64 `json:"over_bound"`
	}
	g.statusJSON("hub_queue", &st)
	if st.Messages <= max || st.OverBound == 0 || st.Refused == 0 {
		t.Errorf("queue while full: %+v; want more than %d messages (Outpost's own past the bound), counted in over_bound", st, max)
	}
	out, _, _ := g.cli("status")
	if !strings.Contains(out, "queued past the bound") {
		t.Errorf("status does not say Outpost's own went past the bound:\n%s", out)
	}
	for _, l := range strings.Split(g.d.out.String(), "\n") {
		if strings.Contains(l, "refused a message for the hub") && strings.Contains(l, "client=outpost ") {
			t.Errorf("an own message was refused: %s", l)
		}
	}

	hubb.start()
	got := make(chan pahomqtt.Message, 1000)
	hubb.client("hq-subscriber", false, got)
	var in, delivered bool
	deadline := time.After(30 * time.Second)
	for !in || !delivered {
		select {
		case m := <-got:
			var v map[string]any
			json.Unmarshal(m.Payload(), &v)
			switch {
			case m.Topic() == "outpost/gw1/sms/in" && v["text"] == "echo: while the queue is full":
				in = true
			case m.Topic() == "outpost/gw1/sms/status/"+id && v["state"] == "delivered":
				delivered = true
			}
		case <-deadline:
			t.Fatalf("at the hub: sms/in of the echo %v, delivered state %v", in, delivered)
		}
	}
}

// statusJSON decodes one key of outpost status --json into v.
func (g *gateway) statusJSON(key string, v any) {
	g.t.Helper()
	out, errs, code := g.cli("status", "--json")
	if code != 0 {
		g.t.Fatalf("status: exit %d: %s", code, errs)
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &all); err != nil {
		g.t.Fatalf("status output: %v\n%s", err, out)
	}
	if err := json.Unmarshal(all[key], v); err != nil {
		g.t.Fatalf("status %s: %v\n%s", key, err, all[key])
	}
}

// TestStatusForwardedIsCurrent: "N forwarded since start" counts what the
// hub acknowledged up to now, not up to the link's last change (it was
// told the count only when the link went up or down, so a link up for a
// week showed 0).
func TestStatusForwardedIsCurrent(t *testing.T) {
	const n = 25
	hubb, _, atHub := hubWithSubscriber(t, "dev/#")
	g := newGatewayWith(t, "", fmt.Sprintf("[hub]\nurl = \"tcp://%s\"\n[[hub.forward]]\ntopic = \"dev/#\"\nqos = 1\n", hubb.addr))
	g.start()
	waitFor(t, "the hub link", 10*time.Second, func() bool { return g.hubStatus().Links.Hub.Connected })
	local, _ := g.subscribe("device")
	for i := 1; i <= n; i++ {
		publishJSON(t, local, "dev/a", fmt.Sprintf(`{"n":%d}`, i))
	}
	for i := 1; i <= n; i++ {
		atHub.next("dev/a", topicIs("dev/a"))
	}
	// The hub has them all; the count follows within a moment (the
	// acknowledged are deleted from the queue in the background).
	var link struct {
		Hub struct {
			Connected bool  `json:"connected"`
			Forwarded int64 `json:"forwarded"`
		} `json:"hub"`
	}
	waitFor(t, fmt.Sprintf("status to count %d forwarded", n), 10*time.Second, func() bool {
		g.statusJSON("links", &link)
		return link.Hub.Forwarded >= n
	})
	if !link.Hub.Connected {
		t.Error("the link went down: the count may have come from that")
	}
	out, _, _ := g.cli("status")
	var forwarded int64 = -1
	if _, rest, ok := strings.Cut(out, " queued, "); ok {
		fmt.Sscanf(rest, "%d forwarded", &forwarded)
	}
	if forwarded < n {
		t.Errorf("status shows %d forwarded, want at least %d:\n%s", forwarded, n, out)
	}
}
