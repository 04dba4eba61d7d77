package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	pahomqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/outpost-sms/outpost/store"
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

// TestHubRequeueSetAside: outpost hub set-aside lists the messages the
// hub kept refusing, and outpost hub requeue puts them back at the end of
// the queue, by id or --all: they reach the hub (here the hub takes them:
// what made it refuse them was fixed meanwhile). Before, a message set
// aside could never be sent again.
func TestHubRequeueSetAside(t *testing.T) {
	hubb, _, atHub := hubWithSubscriber(t, "dev/#")
	g := newGatewayWith(t, "", fmt.Sprintf("[hub]\nurl = \"tcp://%s\"\n[[hub.forward]]\ntopic = \"dev/#\"\nqos = 1\n", hubb.addr))
	// Two messages set aside by an earlier run (the hub of then refused
	// them), in the gateway's own database.
	data := filepath.Join(g.dir, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	s, err := store.Open(context.Background(), filepath.Join(data, "outpost.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for i := 1; i <= 2; i++ {
		m := &store.HubMessage{Topic: fmt.Sprintf("dev/lost/%d", i), Payload: []byte(fmt.Sprintf(`{"n":%d}`, i)), QoS: 1}
		if err := s.Update(context.Background(), func(tx *store.Tx) error {
			if err := tx.EnqueueHub(m); err != nil {
				return err
			}
			_, err := tx.SetAsideHub(m.ID, "the hub dropped the connection twice running")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	s.Close()
	g.start()
	waitFor(t, "the hub link", 10*time.Second, func() bool { return g.hubStatus().Links.Hub.Connected })

	out, errs, code := g.cli("hub", "set-aside")
	if code != 0 || !strings.Contains(out, "dev/lost/1") || !strings.Contains(out, "dev/lost/2") || !strings.Contains(out, "dropped the connection twice") {
		t.Fatalf("hub set-aside: exit %d\n%s%s", code, out, errs)
	}
	var list []store.HubSetAside
	if out, _, _ = g.cli("hub", "set-aside", "--json"); json.Unmarshal([]byte(out), &list) != nil || len(list) != 2 || list[0].ID != ids[1] {
		t.Fatalf("hub set-aside --json: %s", out)
	}
	// Called wrongly: exit 2, saying why; an id not set aside: exit 1,
	// and nothing moves.
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"hub", "requeue"}, 2, "missing argument"},
		{[]string{"hub", "requeue", "1", "--all"}, 2, "exclude each other"},
		{[]string{"hub", "requeue", "abc"}, 2, `"abc" is not an id`},
		{[]string{"hub", "set-aside", "x"}, 2, `unexpected argument "x"`},
		{[]string{"hub", "nosuch"}, 2, "unknown command"},
		{[]string{"hub", "requeue", strconv.FormatInt(ids[0], 10), "999999"}, 1, "no message set aside with id 999999"},
	} {
		if _, errs, code := g.cli(c.args...); code != c.code || !strings.Contains(errs, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", c.args, code, errs, c.code, c.want)
		}
	}
	for _, args := range [][]string{{"hub", "--help"}, {"hub", "requeue", "--help"}, {"hub", "set-aside", "--help"}} {
		if out, errs, code := g.cli(args...); code != 0 || !strings.Contains(out+errs, "usage: outpost hub") {
			t.Errorf("%v: exit %d: %s%s", args, code, out, errs)
		}
	}
	if st := g.hubStatus().HubQueue; st.Messages != 0 || st.Requeued != 0 {
		t.Fatalf("a refused requeue moved something: %+v", st)
	}

	out, errs, code = g.cli("hub", "requeue", strconv.FormatInt(ids[0], 10), "--by", "ops on call")
	if code != 0 || !strings.Contains(out, "1 message(s) put back") {
		t.Fatalf("hub requeue %d: exit %d\n%s%s", ids[0], code, out, errs)
	}
	if v := atHub.next("dev/lost/1", topicIs("dev/lost/1")); v["n"] != float64(1) {
		t.Errorf("dev/lost/1 at the hub: %v", v)
	}
	if out, _, _ = g.cli("hub", "set-aside"); strings.Contains(out, "dev/lost/1") || !strings.Contains(out, "dev/lost/2") {
		t.Errorf("set aside after requeue of dev/lost/1:\n%s", out)
	}
	if out, errs, code = g.cli("hub", "requeue", "--all"); code != 0 || !strings.Contains(out, "dev/lost/2") {
		t.Fatalf("hub requeue --all: exit %d\n%s%s", code, out, errs)
	}
	atHub.next("dev/lost/2", topicIs("dev/lost/2"))
	if out, _, _ = g.cli("hub", "set-aside"); !strings.Contains(out, "no message set aside") {
		t.Errorf("set aside after requeue --all:\n%s", out)
	}
	if st := g.hubStatus().HubQueue; st.Requeued != 2 || st.SetAside != 2 {
		t.Errorf("counters: %+v", st)
	}
	if log := g.d.out.String(); !strings.Contains(log, "set-aside message put back in the hub queue") || !strings.Contains(log, `by="ops on call"`) {
		t.Errorf("the daemon's log does not say who put what back:\n%s", log)
	}
}
