package mqtt

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/crypto/bcrypt"

	"github.com/outpost-sms/outpost/store"
)

// TestContactOps: contacts and groups over MQTT admin/<op>, the reply on
// admin/<op>/reply: added (with a warning for a missing email), bad input
// refused naming the field, a group's members, a CSV import with a bad
// line (nothing imported, the line named); a change is acknowledged only
// after its commit; sms/send to the group says who it does not reach.
func TestContactOps(t *testing.T) {
	b := newTestBroker(t, Options{})
	replies := make(chan paho.Message, 20)
	app := b.paho(t, "app")
	if tok := app.Subscribe("outpost/gw1/admin/#", 1, func(_ paho.Client, m paho.Message) { replies <- m }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	if tok := app.Subscribe("outpost/gw1/sms/send/reply", 1, func(_ paho.Client, m paho.Message) { replies <- m }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	next := func(topic string) AdminReply {
		t.Helper()
		select {
		case m := <-replies:
			var r AdminReply
			if m.Topic() != "outpost/gw1/"+topic || json.Unmarshal(m.Payload(), &r) != nil {
				t.Fatalf("got %s %s, want %s", m.Topic(), m.Payload(), topic)
			}
			if r.OK && r.Error != "" || !r.OK && r.Error == "" {
				t.Errorf("%s: %s", topic, m.Payload())
			}
			return r
		case <-time.After(5 * time.Second):
			t.Fatalf("nothing on %s", topic)
		}
		return AdminReply{}
	}
	op := func(name, payload string) AdminReply {
		t.Helper()
		if tok := app.Publish("outpost/gw1/admin/"+name, 1, false, payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
		return next("admin/" + name + "/reply")
	}
	r := op("contact/add", `{"name": "Amina", "phones": ["+1 555 555 0101"], "email": "amina@example.org"}`)
	if !r.OK || !strings.Contains(mustJSON(r.Result), `"+15555550101"`) || len(r.Warnings) != 0 {
		t.Errorf("add Amina: %+v", r)
	}
	r = op("contact/add", `{"name": "Baraka", "phones": ["+15555550102"]}`)
	if !r.OK || len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "Baraka has no email") {
		t.Errorf("add Baraka: %+v", r)
	}
	for _, c := range []struct{ op, payload, want string }{
		{"contact/add", `{"name": "X", "phones": ["12"]}`, `"phones": bad phone number`},
		{"contact/add", `{"name": "X", "phones": "+15555550103"}`, `"phones": must be a list`},
		{"contact/add", `{"name": "X", "phones": ["+15555550101"]}`, `"phones": +15555550101 is already Amina's number`},
		{"contact/add", `not json`, `bad JSON`},
		{"contact/edit", `{"contact": "nobody", "email": "x@example.org"}`, `no contact "nobody"`},
		{"group/members", `{"name": "nogroup", "add": ["Amina"]}`, `group "nogroup"`},
		{"contact/import", `{"csv": "name,phones\nChausiku,+15555550103\nDalia,0712\n"}`, `line 3: "phones": "0712"`},
	} {
		if r := op(c.op, c.payload); r.OK || !strings.Contains(r.Error, c.want) {
			t.Errorf("%s %s: %+v, want %q", c.op, c.payload, r, c.want)
		}
	}
	if r := op("group/add", `{"name": "staff"}`); !r.OK {
		t.Errorf("group/add: %+v", r)
	}
	r = op("group/members", `{"name": "staff", "add": ["Amina", "Baraka"]}`)
	if !r.OK || len(r.Warnings) != 1 || !strings.Contains(mustJSON(r.Result), `"members":2`) {
		t.Errorf("group/members: %+v", r)
	}
	if r := op("contact/edit", `{"contact": "Baraka", "language": "sw"}`); !r.OK || !strings.Contains(mustJSON(r.Result), `"language":"sw"`) {
		t.Errorf("contact/edit: %+v", r)
	}
	if r := op("contact/list", ``); !r.OK || strings.Count(mustJSON(r.Result), `"id"`) != 2 {
		t.Errorf("contact/list after a failed import: %+v", r)
	}
	if r := op("group/list", `{}`); !r.OK || !strings.Contains(mustJSON(r.Result), `"staff"`) {
		t.Errorf("group/list: %+v", r)
	}

	// sms/send to the group on sms and email: Baraka has no email (the
	// test broker has no email connector: sms alone, and the note).
	if tok := app.Publish("outpost/gw1/sms/send", 1, false, `{"to": "group:staff", "text": "hi", "channels": ["sms"]}`); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	select {
	case m := <-replies:
		var sr Reply
		json.Unmarshal(m.Payload(), &sr)
		if !sr.OK || len(sr.Notes) != 0 {
			t.Errorf("sms/send to staff: %s", m.Payload())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no sms/send reply")
	}
	if r := op("contact/rm", `{"contact": "Baraka"}`); !r.OK {
		t.Errorf("contact/rm: %+v", r)
	}
	if tok := app.Publish("outpost/gw1/sms/send", 1, false, `{"to": "group:staff", "text": "hi", "channels": ["sms", "xmpp"]}`); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	select {
	case m := <-replies:
		// Amina has no XMPP address, and no connector delivers to
		// xmpp: nothing of hers goes there; the note says so.
		var sr Reply
		json.Unmarshal(m.Payload(), &sr)
		if !sr.OK || len(sr.Notes) != 1 || sr.Notes[0] != "group staff: 1 member has no XMPP address: Amina" {
			t.Errorf("sms/send to staff on sms and xmpp: %s", m.Payload())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no sms/send reply")
	}

	// The PUBACK comes after the commit.
	release, held := make(chan struct{}), make(chan struct{})
	var once sync.Once
	unhold := func() { once.Do(func() { close(release) }) }
	defer unhold()
	go b.st.Submit(context.Background(), func(*store.Tx) error { close(held); <-release; return nil }, func(error) {})
	<-held
	c := b.raw(t, "admin")
	c.publish("outpost/gw1/admin/contact/add", []byte(`{"name": "Chausiku", "email": "chausiku@example.org"}`), 1, 7)
	c.conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := c.r.Peek(1); err == nil {
		t.Fatal("a PUBACK before the commit")
	}
	c.conn.SetReadDeadline(time.Time{})
	unhold()
	if id := c.nextAck(); id != 7 {
		t.Fatalf("PUBACK %d, want 7", id)
	}
	var found bool
	b.st.View(context.Background(), func(tx *store.Tx) error { _, err := tx.ContactByName("Chausiku"); found = err == nil; return nil })
	if !found {
		t.Error("acknowledged, not stored")
	}
	if r := next("admin/contact/add/reply"); !r.OK {
		t.Errorf("add Chausiku: %+v", r)
	}
}

// TestContactOpsACL: a client the ACL does not let publish on admin/…
// changes nothing and gets no reply.
func TestContactOpsACL(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	b := newTestBroker(t, Options{Users: []User{{Name: "ops", Hash: string(hash)}, {Name: "phone", Hash: string(hash)}},
		ACL: []ACL{{User: "ops", Topic: "outpost/gw1/#", Access: "readwrite"}, {User: "phone", Topic: "outpost/gw1/sms/#", Access: "readwrite"}}})
	connect := func(user string) paho.Client {
		c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + b.addr).SetClientID(user).SetUsername(user).SetPassword("secret").SetAutoReconnect(false))
		if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("connect %s: %v", user, tok.Error())
		}
		t.Cleanup(func() { c.Disconnect(0) })
		return c
	}
	ops, phone := connect("ops"), connect("phone")
	replies := make(chan paho.Message, 10)
	if tok := ops.Subscribe("outpost/gw1/admin/#", 1, func(_ paho.Client, m paho.Message) { replies <- m }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	phone.Publish("outpost/gw1/admin/contact/add", 1, false, `{"name": "Intruder", "phones": ["+15555550109"]}`).WaitTimeout(5 * time.Second)
	if tok := ops.Publish("outpost/gw1/admin/contact/add", 1, false, `{"name": "Amina", "phones": ["+15555550101"]}`); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	select {
	case m := <-replies:
		if !strings.Contains(string(m.Payload()), "Amina") {
			t.Errorf("first reply: %s", m.Payload())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no reply")
	}
	var cs []store.Contact
	b.st.View(context.Background(), func(tx *store.Tx) (err error) { cs, err = tx.Contacts(); return })
	if len(cs) != 1 || cs[0].Name != "Amina" {
		t.Errorf("contacts: %+v", cs)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestContactRepliesReserved: no client may publish on the replies of
// the contact and group operations (others would take them for
// Outpost's).
func TestContactRepliesReserved(t *testing.T) {
	b := newTestBroker(t, Options{})
	got := make(chan paho.Message, 10)
	sub := b.paho(t, "watcher")
	if tok := sub.Subscribe("outpost/gw1/admin/#", 1, func(_ paho.Client, m paho.Message) { got <- m }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	pub := b.paho(t, "impostor")
	for _, topic := range []string{"admin/contact/list/reply", "admin/group/members/reply", "admin/other/op"} {
		// admin/other/op is no op: its answer (that it is unknown) is
		// the marker that the forged ones before it were dropped.
		if tok := pub.Publish("outpost/gw1/"+topic, 0, false, "forged"); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
	}
	select {
	case m := <-got:
		if m.Topic() != "outpost/gw1/admin/other/op/reply" || !strings.Contains(string(m.Payload()), "unknown operation") {
			t.Fatalf("a client published on %s: %s", m.Topic(), m.Payload())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("marker not received")
	}
}
