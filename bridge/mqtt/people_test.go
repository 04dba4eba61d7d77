package mqtt

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/outpost-sms/outpost/store"
)

// TestPeopleOverMQTT: admin/<op> runs the people operations, committed
// before the PUBACK, the answer on admin/<op>/reply; a bad request gets
// its reason; no client may publish on a reply topic.
func TestPeopleOverMQTT(t *testing.T) {
	b := newTestBroker(t, Options{})
	ask, _ := adminClient(t, b, "app")
	if r := ask("optout-add", `{"addr": "+15550001111"}`); r["ok"] != true || r["changed"] != true {
		t.Errorf("optout-add: %v", r)
	}
	// Committed before the PUBACK: the publish above returned after it.
	var outs []store.OptOut
	b.st.View(t.Context(), func(tx *store.Tx) (err error) { outs, err = tx.OptOuts(); return })
	if len(outs) != 1 || outs[0].Addr != "tel:+15550001111" || outs[0].Channel != "mqtt" {
		t.Errorf("stored %+v", outs)
	}
	if r := ask("optout-add", `{"addr": "+15550001111"}`); r["ok"] != true || r["changed"] != false {
		t.Errorf("a second optout-add: %v", r)
	}
	if r := ask("optout-list", ``); r["ok"] != true || !strings.Contains(toJSON(r["optouts"]), `"addr":"tel:+15550001111"`) {
		t.Errorf("optout-list: %v", r)
	}
	if r := ask("topic-subscribe", `{"addr": "fax:1", "topic": "flood"}`); r["ok"] != false || !strings.Contains(r["error"].(string), `"addr"`) {
		t.Errorf("a bad address: %v", r)
	}
	if r := ask("topic-subscribe", `{"addr": "+15550002222", "topic": "Flood"}`); r["ok"] != true || r["changed"] != true {
		t.Errorf("topic-subscribe: %v", r)
	}
	if r := ask("topic-list", `{"topic": "flood"}`); !strings.Contains(toJSON(r["subscriptions"]), `"addr":"tel:+15550002222"`) {
		t.Errorf("topic-list: %v", r)
	}
	if r := ask("optout-remove", `{"addr": "tel:+15550001111"}`); r["changed"] != true {
		t.Errorf("optout-remove: %v", r)
	}
	// The answers are Outpost's own: no client may publish there.
	if !b.c.auth.reservedTopic("outpost/gw1/admin/optout-list/reply") || b.c.auth.reservedTopic("outpost/gw1/admin/optout-list") {
		t.Error("admin/<op>/reply is not reserved, or admin/<op> is")
	}
}

func toJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

// TestPeopleOverMQTTNeedsTheACL: a client the ACL does not let publish on
// admin/<op> changes nothing.
func TestPeopleOverMQTTNeedsTheACL(t *testing.T) {
	b := newTestBroker(t, Options{ACL: []ACL{{User: "*", Topic: "outpost/gw1/#", Access: "readwrite"}}})
	app := b.paho(t, "app") // anonymous: no rule lets it publish
	tok := app.Publish("outpost/gw1/admin/optout-add", 1, false, `{"addr": "+15550001111"}`)
	if !tok.WaitTimeout(5*time.Second) || tok.Error() == nil {
		t.Fatal("the publish was acknowledged")
	}
	var outs []store.OptOut
	b.st.View(t.Context(), func(tx *store.Tx) (err error) { outs, err = tx.OptOuts(); return })
	if len(outs) != 0 {
		t.Errorf("stored %+v", outs)
	}
}
