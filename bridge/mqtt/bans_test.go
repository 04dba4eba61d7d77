package mqtt

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/outpost-sms/outpost/store"
)

// TestBansOverMQTT: admin/ban, admin/ban-list, admin/unban and
// admin/audit run the ban operations, a ban committed with its audit
// entry (who: the client) before the PUBACK; a bad address gets its
// reason; no client may publish on their reply topics.
func TestBansOverMQTT(t *testing.T) {
	b := newTestBroker(t, Options{})
	got := make(chan paho.Message, 10)
	app := b.paho(t, "ops-app")
	if tok := app.Subscribe("outpost/gw1/admin/+/reply", 1, func(_ paho.Client, m paho.Message) { got <- m }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	ask := func(op, payload string) map[string]any {
		t.Helper()
		if tok := app.Publish("outpost/gw1/admin/"+op, 1, false, payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
		select {
		case m := <-got:
			var v map[string]any
			if m.Topic() != "outpost/gw1/admin/"+op+"/reply" || json.Unmarshal(m.Payload(), &v) != nil {
				t.Fatalf("got %s %s", m.Topic(), m.Payload())
			}
			return v
		case <-time.After(5 * time.Second):
			t.Fatalf("no reply to admin/%s", op)
		}
		return nil
	}
	if r := ask("ban", `{"addr": "+15550001111", "reason": "spam"}`); r["ok"] != true || r["changed"] != true {
		t.Errorf("ban: %v", r)
	}
	// Committed before the PUBACK, with its audit entry.
	var log []store.AuditEntry
	b.st.View(t.Context(), func(tx *store.Tx) (err error) { log, err = tx.AuditLog(time.Time{}, "", 0); return })
	if len(log) != 1 || log[0].Op != "ban" || log[0].Who != "mqtt:ops-app" || log[0].Channel != "mqtt" || log[0].Target != "tel:+15550001111" {
		t.Errorf("audit %+v", log)
	}
	if r := ask("ban-list", ``); !strings.Contains(toJSON(r["bans"]), `"by":"mqtt:ops-app"`) {
		t.Errorf("ban-list: %v", r)
	}
	if r := ask("ban", `{"addr": "fax:1"}`); r["ok"] != false || !strings.Contains(r["error"].(string), `"addr"`) {
		t.Errorf("a bad address: %v", r)
	}
	if r := ask("unban", `{"addr": "tel:+15550001111"}`); r["changed"] != true {
		t.Errorf("unban: %v", r)
	}
	if r := ask("audit", `{"who": "ops-app"}`); !strings.Contains(toJSON(r["audit"]), `"op":"unban"`) {
		t.Errorf("audit: %v", r)
	}
	if !b.c.auth.reservedTopic("outpost/gw1/admin/ban/reply") || !b.c.auth.reservedTopic("outpost/gw1/admin/audit/reply") || b.c.auth.reservedTopic("outpost/gw1/admin/ban") {
		t.Error("admin/ban/reply is not reserved, or admin/ban is")
	}
}
