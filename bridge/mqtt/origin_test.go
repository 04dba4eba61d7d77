package mqtt

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/outpost-sms/outpost/store"
)

// TestSendToMQTTAndOrigin: an sms/send records its channel (mqtt) and its
// sender (mqtt:<client id>), may name mqtt among its recipients (not one
// client), and sms/in says where a message came from and what it carries.
func TestSendToMQTTAndOrigin(t *testing.T) {
	b := newTestBroker(t, Options{})
	got := make(chan paho.Message, 10)
	app := b.paho(t, "app")
	for _, topic := range []string{"outpost/gw1/sms/send/reply", "outpost/gw1/sms/in"} {
		if tok := app.Subscribe(topic, 1, func(_ paho.Client, m paho.Message) { got <- m }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
	}
	next := func(topic string) map[string]any {
		t.Helper()
		select {
		case m := <-got:
			var v map[string]any
			if m.Topic() != topic || json.Unmarshal(m.Payload(), &v) != nil {
				t.Fatalf("got %s %s, want %s", m.Topic(), m.Payload(), topic)
			}
			return v
		case <-time.After(5 * time.Second):
			t.Fatalf("nothing on %s", topic)
		}
		return nil
	}
	send := func(payload string) map[string]any {
		t.Helper()
		if tok := app.Publish("outpost/gw1/sms/send", 1, false, payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
		return next("outpost/gw1/sms/send/reply")
	}
	if r := send(`{"to": "mqtt:app", "text": "hi"}`); r["ok"] != false || !strings.Contains(r["error"].(string), `"to": mqtt:app: messages to mqtt are published on sms/in for every subscriber: give "mqtt" alone`) {
		t.Errorf("send to mqtt:app: %v", r)
	}
	if r := send(`{"id": "o1", "to": ["+15555550100", "mqtt"], "text": "hi"}`); r["ok"] != true {
		t.Fatalf("send: %v", r)
	}
	// The reply is the one every API gives (bridge.SendReply): a group
	// that lists a number twice is said in its notes, as over HTTP.
	b.c.router.Groups = map[string][]string{"ward": {"+15555550101", "+15555550101"}}
	if r := send(`{"id": "o2", "to": "group:ward", "text": "hi"}`); r["ok"] != true || fmt.Sprint(r["notes"]) != "[group ward: 1 number; listed more than once, one delivery each: +15555550101]" {
		t.Fatalf("send to a group listing a number twice: %v", r)
	}
	ctx := context.Background()
	var m store.Message
	var ds []store.Delivery
	err := b.st.View(ctx, func(tx *store.Tx) (err error) {
		if m, err = tx.Message("o1"); err == nil {
			ds, err = tx.Deliveries("o1")
		}
		return
	})
	if err != nil {
		t.Fatal(err)
	}
	if m.Channel != "mqtt" || m.FromAddr != "mqtt:app" || m.Kind != store.KindText || m.Peer != "+15555550100,mqtt" {
		t.Errorf("stored %+v", m)
	}
	if len(ds) != 2 || ds[0].Connector != "sms" || ds[0].Recipient != "+15555550100" || ds[1].Connector != "mqtt" || ds[1].Recipient != "" {
		t.Fatalf("deliveries %+v", ds)
	}
	if _, err := b.c.Deliver(ctx, m, ds[1]); err != nil {
		t.Fatal(err)
	}
	if v := next("outpost/gw1/sms/in"); v["id"] != "o1" || v["from"] != "mqtt:app" || v["text"] != "hi" || v["channel"] != "mqtt" || v["kind"] != "text" {
		t.Errorf("sms/in of a send to mqtt: %v", v)
	}
	// A send the hub published is from the hub.
	if _, _, err := b.c.TakeSend([]byte(`{"id": "h1", "to": "+15555550100", "text": "from afar"}`)); err != nil {
		t.Fatal(err)
	}
	if err := b.st.View(ctx, func(tx *store.Tx) (err error) { m, err = tx.Message("h1"); return }); err != nil {
		t.Fatal(err)
	}
	if m.Channel != "hub" || m.FromAddr != "hub" || m.Kind != store.KindText {
		t.Errorf("a send from the hub: %+v", m)
	}
	text := "hello"
	in := store.Message{ID: "i1", Direction: store.In, Peer: "+15555550101", Text: &text, Channel: "sms", FromAddr: "tel:+15555550101", Kind: store.KindText, Modem: "m1", Parts: 1}
	if _, err := b.c.Deliver(ctx, in, store.Delivery{MessageID: "i1", Connector: "mqtt"}); err != nil {
		t.Fatal(err)
	}
	if v := next("outpost/gw1/sms/in"); v["id"] != "i1" || v["from"] != "+15555550101" || v["channel"] != "sms" || v["kind"] != "text" || v["modem"] != "m1" {
		t.Errorf("sms/in of an SMS: %v", v)
	}
	// The local broker's delivery publishes there alone: the copy for the
	// hub is a delivery of the hub connector (bridge/hub).
	var queued []store.HubMessage
	if err := b.st.View(ctx, func(tx *store.Tx) (err error) { queued, err = tx.HubBatch(0, 100); return }); err != nil {
		t.Fatal(err)
	}
	for _, q := range queued {
		if strings.HasSuffix(q.Topic, "/sms/in") {
			t.Errorf("the mqtt connector queued %s for the hub: %s", q.Topic, q.Payload)
		}
	}
}
