package mqtt

import (
	"log/slog"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	mochi "github.com/mochi-mqtt/server/v2"
)

func TestCovers(t *testing.T) {
	for _, c := range []struct {
		rule, topic string
		want        bool
	}{
		{"#", "a/b", true},
		{"#", "#", true},
		{"field/#", "field", true},
		{"field/#", "field/a/b", true},
		{"field/#", "fields/a", false},
		{"field/+/x", "field/a/x", true},
		{"field/+/x", "field/a/y", false},
		{"field/+/x", "field/+/x", true},
		{"field/a/x", "field/+/x", false}, // the subscription reaches further
		{"field/a/#", "field/#", false},
		{"field/a", "field/a/b", false},
		{"field/a/b", "field/a", false},
	} {
		if got := covers(c.rule, c.topic); got != c.want {
			t.Errorf("covers(%q, %q) = %v, want %v", c.rule, c.topic, got, c.want)
		}
	}
}

// TestACLPatternNames: %c and %u stand for one topic level; a client id
// or user name with a wildcard or a separator cannot widen a rule.
func TestACLPatternNames(t *testing.T) {
	h := newAuthHook(false, nil, []ACL{{User: "*", Topic: "devices/%c/#", Access: "readwrite"}, {User: "*", Topic: "users/%u", Access: "read"}},
		"outpost/gw/", slog.New(slog.DiscardHandler))
	client := func(id, user string) *mochi.Client {
		cl := &mochi.Client{ID: id}
		cl.Properties.Username = []byte(user)
		return cl
	}
	for _, c := range []struct {
		id, user, topic string
		write, want     bool
	}{
		{"dev1", "field1", "devices/dev1/temp", true, true},
		{"dev1", "field1", "devices/dev2/temp", true, false},
		{"#", "field1", "devices/dev2/temp", true, false},
		{"+", "field1", "devices/dev2/temp", true, false},
		{"a/b", "field1", "devices/a/b/temp", true, false},
		{"dev1", "field1", "users/field1", false, true},
		{"dev1", "#", "users/anyone", false, false},
	} {
		if got := h.OnACLCheck(client(c.id, c.user), c.topic, c.write); got != c.want {
			t.Errorf("client %q user %q on %q (write %v): %v, want %v", c.id, c.user, c.topic, c.write, got, c.want)
		}
	}
}

// No client may publish on Outpost's own output topics (other apps would
// take it as Outpost's); Outpost's own publishes there still go out.
func TestOwnTopicsReserved(t *testing.T) {
	b := newTestBroker(t, Options{})
	got := make(chan paho.Message, 100)
	sub := b.paho(t, "watcher")
	if tok := sub.Subscribe("outpost/gw1/#", 1, func(_ paho.Client, m paho.Message) {
		if !m.Retained() {
			got <- m
		}
	}); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	pub := b.paho(t, "impostor")
	for _, topic := range []string{"sms/in", "sms/status/abc", "xform/f1", "modem/sim0/status", "status", "sms/send/reply", "hub/refused"} {
		if tok := pub.Publish("outpost/gw1/"+topic, 0, false, "forged"); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
	}
	// A marker on a topic of its own: what came before it was refused.
	if tok := pub.Publish("outpost/gw1/devices/x", 0, false, "marker"); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	select {
	case m := <-got:
		if string(m.Payload()) != "marker" {
			t.Fatalf("a client published on %s", m.Topic())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("marker not received")
	}
	// QoS 1 there: an MQTT 3.1.1 client is disconnected (no PUBACK).
	if tok := pub.Publish("outpost/gw1/sms/in", 1, false, "forged"); tok.WaitTimeout(5*time.Second) && tok.Error() == nil {
		t.Fatal("a QoS 1 publish on sms/in was acknowledged")
	}
	// Outpost's own publish on sms/in goes out.
	if err := b.c.server.Publish(b.c.Topic("sms/in"), []byte("own"), false, 1); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if m.Topic() != "outpost/gw1/sms/in" || string(m.Payload()) != "own" {
			t.Fatalf("got %s %q, want Outpost's own sms/in", m.Topic(), m.Payload())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Outpost's own sms/in not received")
	}
}
