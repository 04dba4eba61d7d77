package mqtt

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/outpost-sms/outpost/store"
)

// adminClient subscribes to every admin reply and publishes requests.
func adminClient(t *testing.T, b *testBroker, id string) (ask func(op, payload string) map[string]any, got chan paho.Message) {
	got = make(chan paho.Message, 20)
	app := b.paho(t, id)
	if tok := app.Subscribe("outpost/gw1/admin/#", 1, func(_ paho.Client, m paho.Message) { got <- m }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	ask = func(op, payload string) map[string]any {
		t.Helper()
		if tok := app.Publish("outpost/gw1/admin/"+op, 1, false, payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("admin/%s: %v", op, tok.Error())
		}
		select {
		case m := <-got:
			var v map[string]any
			if m.Topic() != "outpost/gw1/admin/"+op+"/reply" || json.Unmarshal(m.Payload(), &v) != nil {
				t.Fatalf("admin/%s: got %s %s", op, m.Topic(), m.Payload())
			}
			return v
		case <-time.After(5 * time.Second):
			t.Fatalf("no reply to admin/%s", op)
		}
		return nil
	}
	return ask, got
}

// TestAdminStrayQuote: a CSV with a stray quote on admin/contact/import
// crashed the daemon (encoding/csv's FieldPos called before checking
// the error). It is refused naming the line, and the broker goes on.
func TestAdminStrayQuote(t *testing.T) {
	b := newTestBroker(t, Options{})
	ask, _ := adminClient(t, b, "ops")
	r := ask("contact/import", `{"csv":"name,phones\n\"Unclosed,+255700000009\n"}`)
	if r["ok"] != false || !strings.Contains(r["error"].(string), "line 2") || !strings.Contains(r["error"].(string), "nothing was imported") {
		t.Errorf("stray quote: %v", r)
	}
	if r := ask("contact/add", `{"name": "Amina", "phones": ["+15555550101"]}`); r["ok"] != true {
		t.Errorf("after the stray quote: %v", r)
	}
}

// TestAdminPanic: an operation that panics is answered ok:false with an
// internal error (logged with its stack), and the broker goes on.
func TestAdminPanic(t *testing.T) {
	adminFamilies = append(adminFamilies, adminFamily{
		ops: []string{"test-panic"},
		run: func(*Connector, context.Context, string, []byte) (any, error) {
			var m map[string]int
			m["x"]++ // a nil map: a bug
			return nil, nil
		},
		refused: func(error) any { return nil },
	})
	t.Cleanup(func() { adminFamilies = adminFamilies[:len(adminFamilies)-1] })
	b := newTestBroker(t, Options{})
	ask, _ := adminClient(t, b, "ops")
	r := ask("test-panic", `{}`)
	if r["ok"] != false || !strings.Contains(r["error"].(string), "internal error: admin/test-panic failed (assignment to entry in nil map)") {
		t.Errorf("panic: %v", r)
	}
	if r := ask("ban-list", ``); r["ok"] != true {
		t.Errorf("after the panic: %v", r)
	}
}

// TestAdminUnknownOp: an unknown admin/<op> is answered on its reply
// topic with the known ones (it got no answer and went to subscribers);
// no client may publish on any admin/…/reply, also an unknown op's.
func TestAdminUnknownOp(t *testing.T) {
	b := newTestBroker(t, Options{})
	ask, got := adminClient(t, b, "ops")
	for _, op := range []string{"bogus", "contact/bogus", "group/bogus"} {
		r := ask(op, `{}`)
		if r["ok"] != false || !strings.Contains(r["error"].(string), `unknown operation "`+op+`", known: audit, ban, ban-list, cancel, contact/add`) {
			t.Errorf("admin/%s: %v", op, r)
		}
	}
	if !b.c.auth.reservedTopic("outpost/gw1/admin/bogus/reply") || !b.c.auth.reservedTopic("outpost/gw1/admin/contact/bogus/reply") {
		t.Error("an unknown op's reply topic is not reserved")
	}
	// The request itself was not passed on, and a client's publish on a
	// reply topic is dropped: only the answer to the next op arrives.
	other := b.paho(t, "spoofer")
	if tok := other.Publish("outpost/gw1/admin/bogus/reply", 0, false, `{"ok":true}`); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	if r := ask("ban-list", ``); r["ok"] != true {
		t.Errorf("ban-list: %v", r)
	}
	select {
	case m := <-got:
		t.Errorf("unexpected %s %s", m.Topic(), m.Payload())
	default:
	}
}

// TestAdminWho: on MQTT who asks is the client as the broker knows it;
// a "by" in the payload is kept as a detail, in every family of ops.
// Trailing text after the JSON is refused.
func TestAdminWho(t *testing.T) {
	b := newTestBroker(t, Options{})
	ask, _ := adminClient(t, b, "opspub")
	for _, c := range []struct{ op, payload string }{
		{"ban", `{"addr": "+15550001111", "by": "user root"}`},
		{"optout-add", `{"addr": "+15550001112", "by": "user root"}`},
		{"contact/add", `{"name": "Amina", "phones": ["+15555550101"], "by": "user root"}`},
		{"group/add", `{"name": "staff", "by": "user root"}`},
	} {
		if r := ask(c.op, c.payload); r["ok"] != true {
			t.Errorf("%s: %v", c.op, r)
		}
	}
	var log []store.AuditEntry
	b.st.View(t.Context(), func(tx *store.Tx) (err error) { log, err = tx.AuditLog(time.Time{}, "", 0); return })
	if len(log) != 4 {
		t.Fatalf("audit: %+v", log)
	}
	for _, e := range log {
		if e.Who != `mqtt:opspub (for "user root")` {
			t.Errorf("%s: who %q", e.Op, e.Who)
		}
	}
	for op, payload := range map[string]string{"ban": `{"addr": "+15550001113"} trailing`, "optout-remove": `{"addr": "+15550001112"}}`, "contact/show": `{"contact": "Amina"} {}`} {
		r := ask(op, payload)
		if r["ok"] != false || !strings.Contains(r["error"].(string), "something after the object") {
			t.Errorf("%s with trailing text: %v", op, r)
		}
	}
}
