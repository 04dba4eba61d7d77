package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	pahomqtt "github.com/eclipse/paho.mqtt.golang"
)

// hubDelivery is a message's delivery to the hub as show --json gives it,
// and the history lines about it.
func (g *gateway) hubDelivery(id string) (state string, attempts int, history []string) {
	g.t.Helper()
	out, errs, code := g.cli("show", id, "--json")
	if code != 0 {
		g.t.Fatalf("show: exit %d: %s", code, errs)
	}
	var v struct {
		Deliveries []struct {
			ID        int64
			Connector string
			State     string
			Attempts  int
		}
		Events []struct {
			DeliveryID int64 `json:"delivery_id"`
			State      string
			Detail     string
		}
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		g.t.Fatalf("show output: %v\n%s", err, out)
	}
	var did int64
	for _, d := range v.Deliveries {
		if d.Connector == "hub" {
			did, state, attempts = d.ID, d.State, d.Attempts
		}
	}
	if did == 0 {
		g.t.Fatalf("message %s has no delivery to the hub:\n%s", id, out)
	}
	for _, e := range v.Events {
		if e.DeliveryID == did {
			history = append(history, e.State+": "+e.Detail)
		}
	}
	return state, attempts, history
}

// waitHubState waits for a message's delivery to the hub to reach state.
func (g *gateway) waitHubState(id, state string) []string {
	g.t.Helper()
	var h []string
	waitFor(g.t, "message "+id+" to be "+state+" at the hub", 30*time.Second, func() bool {
		var st string
		st, _, h = g.hubDelivery(id)
		return st == state
	})
	return h
}

// hubInbox collects the ids of the sms/in messages the hub's subscriber
// gets, counting each.
type hubInbox struct {
	t    *testing.T
	got  chan pahomqtt.Message
	seen map[string]int
	// order is the ids in the order they came, first copies only.
	order []string
}

// waitID waits until the hub got id on sms/in.
func (b *hubInbox) waitID(id string) {
	b.t.Helper()
	deadline := time.After(30 * time.Second)
	for b.seen[id] == 0 {
		select {
		case m := <-b.got:
			if !strings.HasSuffix(m.Topic(), "/sms/in") {
				continue
			}
			var v struct{ ID, Text, Channel string }
			json.Unmarshal(m.Payload(), &v)
			if b.seen[v.ID] == 0 {
				b.order = append(b.order, v.ID)
			}
			b.seen[v.ID]++
		case <-deadline:
			b.t.Fatalf("the hub did not get %s on sms/in (got %v)", id, b.order)
		}
	}
}

// TestHubIsAConnector is acceptance 6 of the star-hub issue, end to end
// with Mosquitto as the hub and the simulated modem on a pty: an inbound
// SMS (the echo) has a delivery to the hub that shows queued → sent
// ("reached the hub") once Mosquitto has it; a message sent to "hub" goes
// there on sms/in; with Mosquitto stopped the copies stay queued, their
// attempts untouched; a cancelled one never goes; kill -9 with copies
// queued and not acknowledged loses nothing: after the restart and the
// hub's return they are sent (at least once at the hub) and their rows end
// sent.
func TestHubIsAConnector(t *testing.T) {
	hubb := newMosquittoHub(t)
	hubb.start()
	got := make(chan pahomqtt.Message, 1000)
	subscribe := func() pahomqtt.Client {
		c := hubb.client("hq", false, got)
		if tok := c.Subscribe("outpost/gw1/sms/in", 1, nil); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("subscribe: %v", tok.Error())
		}
		return c
	}
	sub := subscribe()
	inbox := &hubInbox{t: t, got: got, seen: map[string]int{}}
	g := newGatewayWith(t, "", fmt.Sprintf("[hub]\nurl = \"tcp://%s\"\n", hubb.addr))
	g.start()

	// The hub up: the echo's delivery to the hub is queued, then sent.
	g.send("to the hub and back")
	in1 := g.waitEcho("to the hub and back").ID
	h := g.waitHubState(in1, "sent")
	if len(h) < 2 || !strings.HasPrefix(h[0], "queued: routed") || !strings.Contains(h[len(h)-1], "sent: reached the hub") {
		t.Errorf("history of the hub copy: %q", h)
	}
	inbox.waitID(in1)
	out, _, _ := g.cli("show", in1)
	if !strings.Contains(out, "reached the hub") {
		t.Errorf("show does not say the copy reached the hub:\n%s", out)
	}
	// A message sent to the hub: on sms/in there, with a row.
	sent, errs, code := g.cli("send", "--to", "hub", "--text", "straight to hq")
	if code != 0 {
		t.Fatalf("send --to hub: exit %d: %s", code, errs)
	}
	toHub := strings.TrimSpace(sent[strings.LastIndex(strings.TrimSpace(sent), "\n")+1:])
	g.waitHubState(toHub, "sent")
	inbox.waitID(toHub)
	if s := g.show(toHub); s.State != "sent" {
		t.Errorf("a message sent to the hub is %q", s.State)
	}

	// The hub away: the copies wait, uncounted.
	sub.Disconnect(100)
	hubb.p.stop()
	g.send("while the hub is away")
	in2 := g.waitEcho("while the hub is away").ID
	g.send("cancelled before the hub is back")
	in3 := g.waitEcho("cancelled before the hub is back").ID
	waitFor(t, "the link to try the hub again", 20*time.Second, func() bool {
		var links map[string]struct {
			Connected bool
			LastError string `json:"last_error"`
		}
		g.statusJSON("links", &links)
		return !links["hub"].Connected && links["hub"].LastError != ""
	})
	if st, attempts, _ := g.hubDelivery(in2); st != "queued" || attempts != 0 {
		t.Errorf("with the hub away: %s, %d attempts", st, attempts)
	}
	if out, errs, code := g.cli("cancel", in3); code != 0 {
		t.Fatalf("cancel: exit %d: %s%s", code, out, errs)
	}
	if st, _, h := g.hubDelivery(in3); st != "cancelled" {
		t.Errorf("cancelled copy: %s %q", st, h)
	}

	// kill -9 with in2's copy queued, not acknowledged; the hub back.
	g.d.kill()
	g.start()
	if st, attempts, _ := g.hubDelivery(in2); st != "queued" || attempts != 0 {
		t.Errorf("after kill -9: %s, %d attempts", st, attempts)
	}
	hubb.start()
	subscribe()
	h = g.waitHubState(in2, "sent")
	if !strings.Contains(h[len(h)-1], "reached the hub") {
		t.Errorf("history after the hub came back: %q", h)
	}
	inbox.waitID(in2)
	// What comes after the cancelled one reaches the hub; it never does.
	g.send("after the cancelled one")
	in4 := g.waitEcho("after the cancelled one").ID
	g.waitHubState(in4, "sent")
	inbox.waitID(in4)
	if inbox.seen[in3] != 0 {
		t.Errorf("the cancelled copy reached the hub")
	}
	if st, _, _ := g.hubDelivery(in3); st != "cancelled" {
		t.Errorf("the cancelled copy is %s", st)
	}
	// The local broker's delivery is its own: delivered at once.
	for _, id := range []string{in1, in2} {
		out, _, _ := g.cli("show", id, "--json")
		if !strings.Contains(out, `"connector": "mqtt"`) && !strings.Contains(out, `"connector":"mqtt"`) {
			t.Errorf("%s has no delivery to mqtt:\n%s", id, out)
		}
	}
}

// A delivery to the hub from a run that had one, and a run without
// hub.url: the start says it waits (it used to wait unseen).
func TestHubDeliveriesWaitWithoutHub(t *testing.T) {
	g := newGatewayWith(t, "", fmt.Sprintf("[hub]\nurl = \"tcp://%s\"\n", freePort(t)))
	g.start()
	if _, errs, code := g.cli("send", "--to", "hub", "--text", "for the hub"); code != 0 {
		t.Fatalf("send --to hub: exit %d: %s", code, errs)
	}
	g.d.kill()
	cfg, err := os.ReadFile(g.config)
	if err != nil {
		t.Fatal(err)
	}
	before, _, _ := strings.Cut(string(cfg), "[hub]")
	if err := os.WriteFile(g.config, []byte(before), 0o600); err != nil {
		t.Fatal(err)
	}
	g.start()
	if out := g.d.out.String(); !strings.Contains(out, "messages wait for the hub, but hub.url is not set") || !strings.Contains(out, "count=1") {
		t.Errorf("no word of the delivery waiting for the hub:\n%s", out)
	}
}
