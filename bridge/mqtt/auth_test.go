package mqtt

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/crypto/bcrypt"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
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
		{"field/+", "field/", true},
		{"field/+", "field", false},
		{"+", "", true},
		{"+/+", "a", false},
		{"field/#", "field/#", true},
		{"field/+/#", "field/a", true},
		{"field/+/#", "field", false},
		{"a/b", "a/b/", false},
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

func loginFrom(remote, user, password string) (*mochi.Client, packets.Packet) {
	cl := &mochi.Client{ID: "c-" + remote, Net: mochi.ClientConnection{Remote: remote}}
	return cl, packets.Packet{Connect: packets.ConnectParams{Username: []byte(user), Password: []byte(password), UsernameFlag: true, PasswordFlag: true}}
}

// The failed-login map stays bounded: hosts quiet for failureMemory are
// forgotten, and a full map forgets the host that failed least recently.
func TestFailedLoginsPruned(t *testing.T) {
	h := newAuthHook(false, nil, nil, "outpost/gw/", slog.New(slog.DiscardHandler))
	h.sleep = func(time.Duration) {}
	h.compare = func([]byte, []byte) error { return errors.New("no") } // bcrypt itself is not what this tests
	clock := time.Now()
	h.now = func() time.Time { return clock }
	h.maxHosts = 100
	for i := range 1000 {
		h.OnConnectAuthenticate(loginFrom(fmt.Sprintf("10.0.%d.%d:1883", i/256, i%256), "nobody", "x"))
		clock = clock.Add(time.Millisecond)
	}
	if n := len(h.failures); n > 100 {
		t.Fatalf("%d hosts remembered, want at most 100", n)
	}
	for range 3 {
		h.OnConnectAuthenticate(loginFrom("192.0.2.1:1883", "nobody", "x"))
	}
	if f := h.failures["192.0.2.1"]; f.n != 3 {
		t.Fatalf("192.0.2.1: %d failures, want 3", f.n)
	}
	clock = clock.Add(failureMemory + time.Minute)
	h.OnConnectAuthenticate(loginFrom("192.0.2.2:1883", "nobody", "x"))
	if n := len(h.failures); n != 1 {
		t.Fatalf("%d hosts remembered after %s of quiet, want only the new one", n, failureMemory)
	}
	h.OnConnectAuthenticate(loginFrom("192.0.2.1:1883", "nobody", "x"))
	if f := h.failures["192.0.2.1"]; f.n != 1 {
		t.Fatalf("192.0.2.1 after a quiet spell: %d failures, want 1 (slow again from the start)", f.n)
	}
}

// At most maxConcurrentChecks bcrypt comparisons run at once; a login
// that cannot start one within checkWait is refused, not queued.
func TestBcryptChecksBounded(t *testing.T) {
	// A cheap hash: what is measured is how many run at once.
	hash, err := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.MinCost+2)
	if err != nil {
		t.Fatal(err)
	}
	h := newAuthHook(false, []User{{Name: "u", Hash: string(hash)}}, nil, "outpost/gw/", slog.New(slog.DiscardHandler))
	h.sleep = func(time.Duration) {}
	h.checkWait = time.Minute // room for all of them in turn, even under the race detector
	var running, most atomic.Int32
	compare := h.compare
	h.compare = func(hash, pw []byte) error {
		n := running.Add(1)
		defer running.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		return compare(hash, pw)
	}
	const logins = 8
	results := make(chan bool, logins)
	var wg sync.WaitGroup
	for i := range logins {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results <- h.OnConnectAuthenticate(loginFrom(fmt.Sprintf("127.0.0.%d:1883", i+1), "u", "secret"))
		}()
	}
	wg.Wait()
	close(results)
	for ok := range results {
		if !ok {
			t.Fatal("a right password was refused while the checks had room within checkWait")
		}
	}
	if m := most.Load(); m > maxConcurrentChecks {
		t.Fatalf("%d bcrypt checks at once, want at most %d", m, maxConcurrentChecks)
	}
	// With no wait allowed, the excess is refused at once.
	h.checkWait = 0
	block := make(chan struct{})
	h.compare = func(hash, pw []byte) error { <-block; return compare(hash, pw) }
	started := make(chan bool, maxConcurrentChecks)
	for i := range maxConcurrentChecks {
		go func() {
			started <- h.OnConnectAuthenticate(loginFrom(fmt.Sprintf("127.0.1.%d:1883", i), "u", "secret"))
		}()
	}
	waitUntil(t, "the checks to be taken", 5*time.Second, func() bool { return len(h.checks) == maxConcurrentChecks })
	if h.OnConnectAuthenticate(loginFrom("127.0.2.1:1883", "u", "secret")) {
		t.Fatal("a login past the bound was let in")
	}
	close(block)
	for range maxConcurrentChecks {
		if !<-started {
			t.Fatal("a login within the bound was refused")
		}
	}
}
