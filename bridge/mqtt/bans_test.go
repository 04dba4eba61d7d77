package mqtt

import (
	"strings"
	"testing"
	"time"

	"github.com/outpost-sms/outpost/store"
)

// TestBansOverMQTT: admin/ban, admin/ban-list, admin/unban and
// admin/audit run the ban operations, a ban committed with its audit
// entry (who: the client) before the PUBACK; a bad address gets its
// reason; no client may publish on their reply topics.
func TestBansOverMQTT(t *testing.T) {
	b := newTestBroker(t, Options{})
	ask, _ := adminClient(t, b, "ops-app")
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
