package xmpptest

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const wait = 5 * time.Second

func kind(k, from string) func(Event) bool {
	return func(e Event) bool { return e.Kind == k && SameJID(e.From, from) }
}

func TestCertificate(t *testing.T) {
	p := StartProsody(t, "outpost.test", map[string]string{"outpost": "pw"})
	caPEM, err := os.ReadFile(p.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("CAFile holds no certificate")
	}
	data, err := os.ReadFile(filepath.Join(p.dir, "certs", "outpost.test.crt"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"outpost.test", "localhost", "127.0.0.1"} {
		if _, err := cert.Verify(x509.VerifyOptions{DNSName: name, Roots: pool}); err != nil {
			t.Errorf("server certificate for %s: %v", name, err)
		}
	}
	if _, err := cert.Verify(x509.VerifyOptions{DNSName: p.TLSConfig().ServerName, Roots: p.TLSConfig().RootCAs}); err != nil {
		t.Errorf("TLSConfig does not verify the server: %v", err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{DNSName: "other.test", Roots: pool}); err == nil {
		t.Error("server certificate verifies for other.test")
	}
	if _, err := cert.Verify(x509.VerifyOptions{DNSName: "outpost.test"}); err == nil {
		t.Error("server certificate verifies without the test's CA")
	}
}

func TestHarness(t *testing.T) {
	start := time.Now()
	p := StartProsody(t, "outpost.test", map[string]string{"alice": "alice-pw", "bob": "bob-pw"})
	t.Logf("prosody listening on %s after %v", p.Addr(), time.Since(start))
	alice := Connect(t, p, "alice", "alice-pw")
	bob := Connect(t, p, "bob", "bob-pw")
	if !strings.HasPrefix(alice.FullJID(), "alice@outpost.test/") {
		t.Errorf("alice's full JID is %q", alice.FullJID())
	}
	alice.Expect(wait, kind("connected", "alice@outpost.test"))

	// A chat message with a receipt request reaches bob as sent; the
	// receipt goes back only when the test sends it.
	id := alice.Send(bob.JID, "hello bob", RequestReceipt())
	got := bob.ExpectBody(wait, alice.JID, "hello bob")
	if got.ID != id || got.Type != "chat" || !got.ReceiptRequest || got.From != alice.FullJID() {
		t.Errorf("bob got %v, want id %q type chat with a receipt request from %s", got, id, alice.FullJID())
	}
	alice.ExpectNone(300*time.Millisecond, func(e Event) bool { return e.Kind == "receipt" })
	bob.SendReceipt(got.From, got.ID)
	r := alice.Expect(wait, kind("receipt", bob.JID))
	if r.ReceiptFor != id {
		t.Errorf("receipt names %q, want %q", r.ReceiptFor, id)
	}
	bob.Send(alice.JID, "no receipt please", Type(""), ID("normal-1"))
	if got := alice.ExpectBody(wait, bob.JID, "no receipt"); got.ReceiptRequest || got.ID != "normal-1" || got.Type != "" {
		t.Errorf("alice got %v, want a normal message normal-1 and no receipt request", got)
	}

	// Subscriptions wait for the test's answer.
	alice.Subscribe(bob.JID)
	bob.Expect(wait, kind("subscribe", alice.JID))
	alice.ExpectNone(300*time.Millisecond, kind("subscribed", bob.JID))
	bob.ApproveSubscription(alice.JID)
	alice.Expect(wait, kind("subscribed", bob.JID))
	alice.Expect(wait, func(e Event) bool { return e.Kind == "presence" && e.From == bob.FullJID() && e.Type == "" })
	bob.Presence("away", "lunch")
	pr := alice.Expect(wait, func(e Event) bool { return e.Kind == "presence" && e.From == bob.FullJID() && e.Show == "away" })
	if pr.Status != "lunch" {
		t.Errorf("bob's presence reached alice as %v", pr)
	}
	alice.AutoApprove(true)
	bob.Subscribe(alice.JID)
	bob.Expect(wait, kind("subscribed", alice.JID))
	alice.Expect(wait, kind("subscribe", bob.JID))
	alice.Unsubscribe(bob.JID)
	bob.Expect(wait, kind("unsubscribe", alice.JID))

	// A message to an account that does not exist bounces with its id.
	id = alice.Send("nobody@outpost.test", "anyone?")
	if e := alice.Expect(wait, kind("error", "nobody@outpost.test")); e.ID != id || e.Error != "service-unavailable" {
		t.Errorf("bounce %v, want id %q service-unavailable", e, id)
	}

	// An outage: both clients see it, and log in again once the server
	// is back on the same port; what was sent meanwhile is kept.
	p.Stop()
	if p.Running() {
		t.Fatal("prosody runs after Stop")
	}
	alice.Expect(wait, kind("disconnected", ""))
	bob.Expect(wait, kind("disconnected", ""))
	// Prosody says why (the log shows the stream error sent to both),
	// but slixmpp drops a stream error that comes with the end of the
	// connection now and then: one of the two clients is enough.
	shutdown := 0
	for _, c := range []*Client{alice, bob} {
		for _, e := range c.Events() {
			if e.Kind == "error" && e.Type == "stream" {
				if e.Error != "system-shutdown" {
					t.Errorf("Stop reached %s as %v, want a system-shutdown stream error", c.JID, e)
				}
				shutdown++
			}
		}
	}
	if shutdown == 0 {
		t.Error("Stop reached neither client as a system-shutdown stream error")
	}
	if alice.Connected() {
		t.Error("alice is connected while the server is down")
	}
	if _, err := Dial(t, p, "alice", "alice-pw"); err == nil {
		t.Error("a login succeeds while the server is down")
	}
	addr := p.Addr()
	p.Start()
	if p.Addr() != addr || !p.Running() {
		t.Fatalf("restarted on %s (running %v), want %s", p.Addr(), p.Running(), addr)
	}
	alice.Reconnect()
	bob.Reconnect()
	alice.Send(bob.JID, "back again")
	bob.ExpectBody(wait, alice.JID, "back again")
}

func TestReconnect(t *testing.T) {
	p := StartProsody(t, "outpost.test", map[string]string{"alice": "pw", "bob": "pw"})
	alice := Connect(t, p, "alice", "pw")
	bob := Connect(t, p, "bob", "pw")
	bob.Close()
	alice.Send(bob.JID, "while you were out")
	alice.Sync()

	p.Kill()
	alice.Expect(wait, kind("disconnected", ""))
	p.Start()
	alice.Reconnect()
	bob.Reconnect()
	bob.ExpectBody(wait, alice.JID, "while you were out")
	id := alice.Send(bob.JID, "after the restart")
	bob.ExpectBody(wait, alice.JID, "after the restart")

	if !strings.Contains(p.LogTail(), id) {
		t.Errorf("the log tail does not show the last message routed:\n%s", p.LogTail())
	}
}

func TestWrongPassword(t *testing.T) {
	p := StartProsody(t, "outpost.test", map[string]string{"alice": "pw"})
	start := time.Now()
	_, err := Dial(t, p, "alice", "wrong")
	if err == nil || !strings.Contains(err.Error(), "not-authorized") {
		t.Fatalf("login with a wrong password: %v, want not-authorized", err)
	}
	t.Logf("refused in %v: %v", time.Since(start), err)
	if _, err := Dial(t, p, "mallory", "pw"); err == nil {
		t.Fatal("an unknown account logs in")
	}
}

func TestUntrustedCA(t *testing.T) {
	p := StartProsody(t, "outpost.test", map[string]string{"alice": "pw"})
	other := StartProsody(t, "other.test", nil)
	p.CAFile = other.CAFile
	_, err := Dial(t, p, "alice", "pw")
	if err == nil || !strings.Contains(err.Error(), "TLS") {
		t.Fatalf("login with the wrong CA: %v, want a TLS failure", err)
	}
	t.Log(err)
}

// Nothing leaves the machine: a message for another domain bounces at
// once instead of the server looking the domain up.
func TestRemoteDomain(t *testing.T) {
	p := StartProsody(t, "outpost.test", map[string]string{"alice": "pw"})
	alice := Connect(t, p, "alice", "pw")
	id := alice.Send("someone@remote.example", "hello?")
	if e := alice.Expect(wait, kind("error", "someone@remote.example")); e.ID != id || e.Error != "not-allowed" {
		t.Errorf("bounce %v, want id %q not-allowed", e, id)
	}
}

// Accounts made or changed while the server runs count at the next login.
func TestRegister(t *testing.T) {
	p := StartProsody(t, "outpost.test", map[string]string{"alice": "old"})
	p.Register("carol", "pw")
	Connect(t, p, "carol", "pw")
	p.Register("alice", "new")
	if _, err := Dial(t, p, "alice", "old"); err == nil {
		t.Error("the old password still logs in")
	}
	Connect(t, p, "alice", "new")
}
