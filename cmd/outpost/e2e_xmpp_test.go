package main

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/outpost-sms/outpost/bridge/xmpp/xmpptest"
)

// xmppAccounts are the accounts of the tests' Prosody: Outpost's own, a
// user, an admin and a stranger.
var xmppAccounts = map[string]string{"outpost": "op-pw", "alice": "alice-pw", "bob": "bob-pw", "eve": "eve-pw"}

// xmppGateway is a gateway on the in-process simulated modem logged in to
// p as outpost@outpost.test, alice a user and bob an admin; extra goes
// after the [xmpp] section.
func xmppGateway(t *testing.T, p *xmpptest.Prosody, extra string) *gateway {
	return newGatewayWith(t, "", fmt.Sprintf(`[xmpp]
jid = "outpost@outpost.test"
password = "op-pw"
server = %q
ca_file = %q
reconnect_max = "2s"
ping_every = "5s"
[[xmpp.user]]
jid = "alice@outpost.test"
role = "user"
[[xmpp.user]]
jid = "Bob@outpost.test"
role = "admin"
%s`, p.Addr(), p.CAFile, extra))
}

const xmppWait = 30 * time.Second

func chatFrom(from, sub string) func(xmpptest.Event) bool {
	return func(ev xmpptest.Event) bool {
		return ev.Kind == "message" && xmpptest.SameJID(ev.From, from) && strings.Contains(ev.Body, sub)
	}
}

// queuedIn is the id of an answer "queued <id>".
func queuedIn(t *testing.T, ev xmpptest.Event) string {
	t.Helper()
	f := strings.Fields(ev.Body)
	if len(f) < 2 || f[0] != "queued" {
		t.Fatalf("want \"queued <id>\", got %q", ev.Body)
	}
	return f[1]
}

// TestXMPPChatToSMS is acceptance 1 and 2 through the real binary: a
// user chats a number and gets "queued <id>", then the receipt the chat
// asked for; the echo comes back naming the number; ". again" answers
// it and is reported delivered as a line; a stranger is refused once
// and logged; a user cannot ban.
func TestXMPPChatToSMS(t *testing.T) {
	p := xmpptest.StartProsody(t, "outpost.test", xmppAccounts)
	g := xmppGateway(t, p, "")
	g.start()
	out := "outpost@outpost.test"
	alice := xmpptest.Connect(t, p, "alice", "alice-pw")
	alice.AutoApprove(true)
	alice.Subscribe(out)
	alice.Expect(xmppWait, func(ev xmpptest.Event) bool {
		return ev.Kind == "presence" && xmpptest.SameJID(ev.From, out) && ev.Status == "1 modem ready, 0 queued"
	})

	stanza := alice.Send(out, "+15555550100 hi", xmpptest.RequestReceipt())
	id := queuedIn(t, alice.Expect(xmppWait, chatFrom(out, "queued ")))
	rc := alice.Expect(xmppWait, func(ev xmpptest.Event) bool { return ev.Kind == "receipt" })
	if rc.ReceiptFor != stanza {
		t.Errorf("the receipt is for %q, want the chat's id %q", rc.ReceiptFor, stanza)
	}
	if s := g.show(id); s.State != "delivered" {
		t.Errorf("%s is %s after its receipt", id, s.State)
	}
	alice.Expect(xmppWait, chatFrom(out, "+15555550100: echo: hi"))

	alice.Send(out, ". again")
	id2 := queuedIn(t, alice.Expect(xmppWait, chatFrom(out, "queued ")))
	alice.Expect(xmppWait, chatFrom(out, "delivered: "+id2+" to +15555550100"))
	alice.Expect(xmppWait, chatFrom(out, "+15555550100: echo: again"))
	if s := g.show(id2); len(s.Deliveries) != 1 || s.Deliveries[0].Recipient != "+15555550100" {
		t.Errorf("the answer went to %+v", s.Deliveries)
	}

	// A number the network does not know: failed, with the reason.
	alice.Send(out, "+15555550177 anyone there")
	id3 := queuedIn(t, alice.Expect(xmppWait, chatFrom(out, "queued ")))
	if ev := alice.Expect(xmppWait, chatFrom(out, "failed (")); !strings.HasSuffix(ev.Body, id3+" to +15555550177") {
		t.Errorf("the failure line %q does not name %s and its number", ev.Body, id3)
	}

	eve := xmpptest.Connect(t, p, "eve", "eve-pw")
	eve.Send(out, "+15555550100 let me in")
	eve.Expect(xmppWait, chatFrom(out, "for its own team only"))
	eve.Send(out, "+15555550100 please")
	eve.ExpectNone(2*time.Second, func(ev xmpptest.Event) bool { return ev.Kind == "message" })
	if n := strings.Count(g.d.out.String(), "refused a chat from a stranger"); n != 1 {
		t.Errorf("the refusal is logged %d times, want 1", n)
	}
	alice.Send(out, "ban +15555550199")
	alice.Expect(xmppWait, chatFrom(out, `"ban" is for admins`))
	if o, _, _ := g.cli("ban", "list", "--json"); strings.Contains(o, "15555550199") {
		t.Errorf("a user banned: %s", o)
	}
}

// jsonOf decodes a JSON answer into a generic value.
func jsonOf(t *testing.T, what, s string) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("%s: %v\n%s", what, err, s)
	}
	return v
}

// TestXMPPAdmin is acceptance 3: an admin's status, retry, cancel, ban
// and stats do what the CLI does (their JSON compared with outpost …
// --json), and each action is in the audit log with the admin's JID.
func TestXMPPAdmin(t *testing.T) {
	p := xmpptest.StartProsody(t, "outpost.test", xmppAccounts)
	g := xmppGateway(t, p, "")
	g.start()
	out := "outpost@outpost.test"
	bob := xmpptest.Connect(t, p, "bob", "bob-pw")
	ask := func(cmd string) string {
		t.Helper()
		bob.Send(out, cmd)
		return bob.Expect(xmppWait, chatFrom(out, "")).Body
	}

	// status: the modems and queues the CLI shows.
	g.waitDelivered(g.send("warm up"))
	// The queues move (the echo's copy to mqtt): asked until both agree.
	var chat, cli map[string]any
	var o string
	var diff []string
	for range 20 {
		chat = jsonOf(t, "status --json by chat", ask("status --json"))
		o, _, _ = g.cli("status", "--json")
		cli = jsonOf(t, "outpost status --json", o)
		diff = nil
		for _, k := range []string{"gateway_id", "queues", "modems"} {
			c, l := chat[k], cli[k]
			if k == "modems" { // signal and times move; the ids and states do not
				c, l = states(c), states(l)
			}
			if !reflect.DeepEqual(c, l) {
				diff = append(diff, fmt.Sprintf("status %s by chat %v, by the CLI %v", k, c, l))
			}
		}
		if diff == nil {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	for _, d := range diff {
		t.Error(d)
	}
	if _, ok := chat["disk"].(map[string]any)["free_bytes"]; !ok {
		t.Errorf("status has no disk: %v", chat["disk"])
	}
	if s := ask("status"); !strings.Contains(s, "modem sim0: ready, signal -") || !strings.Contains(s, "link xmpp: up") || !strings.Contains(s, "disk: ") {
		t.Errorf("status by chat:\n%s", s)
	}

	// retry: a failed SMS (a number the network does not know) is queued
	// again, as outpost retry does.
	failed := g.send("nobody", "--to", "+15555550177")
	g.waitState(failed, "failed")
	if s := ask("retry " + failed); !strings.Contains(s, "retry "+failed+":") {
		t.Errorf("retry by chat: %q", s)
	}
	waitFor(t, "the retried SMS to fail again", 20*time.Second, func() bool {
		s := g.show(failed)
		return s.State == "failed" && hasEvent(s, "retried by xmpp:bob@outpost.test")
	})

	// cancel: a scheduled SMS ends cancelled.
	later := g.send("later", "--at", "1h")
	if s := ask("cancel " + later); !strings.Contains(s, "cancel "+later+":") {
		t.Errorf("cancel by chat: %q", s)
	}
	if s := g.show(later); s.State != "cancelled" || !hasEvent(s, "cancelled by xmpp:bob@outpost.test") {
		t.Errorf("%s is %s after cancel by chat", later, s.State)
	}

	// ban: the CLI's list has it.
	if s := ask("ban +15555550199 spam"); s != "ban: done for +15555550199" {
		t.Errorf("ban by chat: %q", s)
	}
	o, _, _ = g.cli("ban", "list", "--json")
	if !strings.Contains(o, `"tel:+15555550199"`) || !strings.Contains(o, "spam") {
		t.Errorf("outpost ban list after a ban by chat: %s", o)
	}
	if s := ask("ban +15555550199"); !strings.Contains(s, "nothing to change") {
		t.Errorf("a second ban: %q", s)
	}

	// stats: the same figures as outpost stats.
	chat = jsonOf(t, "stats --json by chat", ask("stats --json"))
	o, _, _ = g.cli("stats", "--json")
	cli = jsonOf(t, "outpost stats --json", o)
	for _, k := range []string{"modems", "channels"} {
		if !reflect.DeepEqual(chat[k], cli[k]) {
			t.Errorf("stats %s by chat %v, by the CLI %v", k, chat[k], cli[k])
		}
	}

	// The audit log names the admin for each action.
	o, _, _ = g.cli("audit", "--json")
	for _, op := range []string{"retry", "cancel", "ban"} {
		if !strings.Contains(o, `"who":"xmpp:bob@outpost.test"`) && !strings.Contains(o, `"who": "xmpp:bob@outpost.test"`) {
			t.Fatalf("the audit log does not name the admin:\n%s", o)
		}
		if !strings.Contains(o, `"op":"`+op+`"`) && !strings.Contains(o, `"op": "`+op+`"`) {
			t.Errorf("the audit log has no %s:\n%s", op, o)
		}
	}
	if s := ask("audit"); !strings.Contains(s, "xmpp:bob@outpost.test (xmpp) ban tel:+15555550199 spam") {
		t.Errorf("audit by chat:\n%s", s)
	}
	if s := ask("show " + later); !strings.Contains(s, later) || !strings.Contains(s, "cancelled") {
		t.Errorf("show by chat:\n%s", s)
	}
	if s := ask("queue"); s != "Nothing is queued." {
		t.Errorf("queue by chat: %q", s)
	}
	if s := ask("help"); !strings.Contains(s, "ban NUMBER") {
		t.Errorf("help for an admin: %q", s)
	}
}

// states is each modem's id → state in a status's "modems".
func states(v any) map[string]any {
	out := map[string]any{}
	m, _ := v.(map[string]any)
	for id, s := range m {
		sm, _ := s.(map[string]any)
		out[id] = sm["state"]
	}
	return out
}

// TestXMPPOutage is acceptance 4: the server is stopped while SMS arrive
// for an XMPP route; Outpost is killed (-9) meanwhile and started again;
// when the server is back every SMS reaches the user, in order, none
// twice, no attempt used up; the presence shows the modem's state.
func TestXMPPOutage(t *testing.T) {
	p := xmpptest.StartProsody(t, "outpost.test", xmppAccounts)
	g := xmppGateway(t, p, "[[route]]\nfrom = \"+15555550100\"\nto = [\"xmpp:alice@outpost.test\"]\n")
	g.start()
	out := "outpost@outpost.test"
	alice := xmpptest.Connect(t, p, "alice", "alice-pw")
	alice.AutoApprove(true)
	alice.Subscribe(out)
	alice.Expect(xmppWait, func(ev xmpptest.Event) bool {
		return ev.Kind == "presence" && xmpptest.SameJID(ev.From, out) && ev.Status == "1 modem ready, 0 queued" && ev.Show == ""
	})

	p.Stop()
	var texts []string
	for i := range 4 {
		texts = append(texts, fmt.Sprintf("outage %d", i))
		g.send(texts[i])
	}
	for _, s := range texts {
		g.waitEcho(s)
	}
	g.d.kill()
	g.start()
	for i := 4; i < 8; i++ {
		texts = append(texts, fmt.Sprintf("outage %d", i))
		g.send(texts[i])
	}
	for _, s := range texts[4:] {
		g.waitEcho(s)
	}
	// The connector keeps trying, capped at 2s. OUTPOST_XMPP_OUTAGE makes
	// the outage longer (the note's run: 3m).
	outage := 5 * time.Second
	if v := os.Getenv("OUTPOST_XMPP_OUTAGE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatal(err)
		}
		outage = d
	}
	time.Sleep(outage)
	p.Start()
	alice.Reconnect()
	for _, s := range texts {
		alice.Expect(xmppWait, chatFrom(out, "+15555550100: echo: "+s))
	}
	var got []string
	for _, ev := range alice.Events() {
		if ev.Kind == "message" && strings.Contains(ev.Body, "echo: outage") {
			got = append(got, strings.TrimPrefix(ev.Body, "+15555550100: echo: "))
		}
	}
	if !reflect.DeepEqual(got, texts) {
		t.Errorf("the user got %q, want %q in that order, once each", got, texts)
	}
	for _, s := range texts {
		_, e := g.echoes("echo: " + s)
		sh := g.show(e.ID)
		for _, d := range sh.Deliveries {
			if d.Recipient == "alice@outpost.test" && (d.State != "delivered" || d.Attempts != 1) {
				t.Errorf("%s to %s: %s after %d attempts", e.ID, d.Recipient, d.State, d.Attempts)
			}
		}
	}
}
