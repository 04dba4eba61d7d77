package mqtt

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/outpost-sms/outpost/store"
)

// TestStatsOverMQTT: admin/stats answers the router's statistics on
// admin/stats/reply; a bad request gets ok:false with its reason; no
// client may publish on the reply topic.
func TestStatsOverMQTT(t *testing.T) {
	b := newTestBroker(t, Options{})
	txt := "hi"
	in := &store.Message{Peer: "+15550001111", Text: &txt, Source: "sms", FromAddr: "tel:+15550001111", State: store.Complete}
	if err := b.st.Update(t.Context(), func(tx *store.Tx) error { return b.c.router.StoreInbound(tx, in, "test") }); err != nil {
		t.Fatal(err)
	}
	got := make(chan paho.Message, 10)
	app := b.paho(t, "ops-app")
	if tok := app.Subscribe("outpost/gw1/admin/stats/reply", 1, func(_ paho.Client, m paho.Message) { got <- m }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	ask := func(payload string) map[string]any {
		t.Helper()
		if tok := app.Publish("outpost/gw1/admin/stats", 1, false, payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
		select {
		case m := <-got:
			var v map[string]any
			if json.Unmarshal(m.Payload(), &v) != nil {
				t.Fatalf("got %s %s", m.Topic(), m.Payload())
			}
			return v
		case <-time.After(5 * time.Second):
			t.Fatal("no reply to admin/stats")
		}
		return nil
	}
	r := ask(`{"number": "tel:+15550001111", "since": "1d"}`)
	if s, _ := r["sender"].(map[string]any); r["ok"] != true || s == nil || s["addr"] != "tel:+15550001111" || s["in"] != 1.0 || s["last_seen"] == nil {
		t.Errorf("stats: %v", r)
	}
	if r := ask(`{"since": "yesterday"}`); r["ok"] != false || !strings.Contains(r["error"].(string), `since "yesterday"`) {
		t.Errorf("a bad since: %v", r)
	}
	if !b.c.auth.reservedTopic("outpost/gw1/admin/stats/reply") || b.c.auth.reservedTopic("outpost/gw1/admin/stats") {
		t.Error("admin/stats/reply is not reserved, or admin/stats is")
	}
}
