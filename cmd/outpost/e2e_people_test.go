package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/outpost-sms/outpost/pdu"
)

// phone is a person texting the gateway through the controlled simulator.
type phone struct {
	g     *gateway
	modem *proc
	num   string
	ref   int
	// stored is the number as the gateway stores the sender (its one
	// form: a national number with [sms] country_code is international);
	// "": num.
	stored string
}

// storedAs is the number the gateway stores p's messages from.
func (p *phone) storedAs() string {
	if p.stored != "" {
		return p.stored
	}
	return p.num
}

// says hands the gateway's modem an SMS from the phone and waits until it
// is stored; it returns the inbound message.
func (p *phone) says(text string) routedShown {
	p.g.t.Helper()
	n := len(p.g.fromInbox(p.storedAs()))
	p.ref++
	for _, part := range phoneParts(p.g.t, p.num, pdu.Outgoing{Text: text}, p.ref) {
		p.modem.deliver(p.g.t, part)
	}
	var got []inboxEntry
	waitFor(p.g.t, p.num+" says "+text, 20*time.Second, func() bool {
		got = p.g.fromInbox(p.storedAs())
		return len(got) > n
	})
	if got[0].Text == nil || *got[0].Text != text {
		p.g.t.Fatalf("the newest message of %s is %+v, want %q", p.num, got[0], text)
	}
	return p.g.routedShow(got[0].ID)
}

// event returns the detail of the first event of s in state, or "".
func event(s routedShown, state string) string {
	for _, e := range s.Events {
		if e.State == state {
			return e.Detail
		}
	}
	return ""
}

// recipients of a send, as outpost show lists them.
func recipientsOf(s routedShown) []string {
	var to []string
	for _, d := range s.Deliveries {
		to = append(to, d.Recipient)
	}
	return to
}

// TestOptOutEndToEnd is the acceptance of the people's keywords through
// the real binary and the simulated modem: JOIN by SMS is confirmed by
// SMS; a send to topic: reaches its subscribers only; STOP is confirmed
// once (a second STOP gets no answer), then a group, a topic and a
// route's auto-reply skip the number and a direct send is refused with
// the reason, except one marked as an answer to its own message; START
// is confirmed, and a direct send goes again. outpost optout list shows
// the number while it is opted out.
func TestOptOutEndToEnd(t *testing.T) {
	dir := t.TempDir()
	device, modem := controlledSim(t, dir)
	g := newGatewayWith(t, device, `[groups]
nurses = ["+15550001111", "+15550002222"]
[[route]]
keyword = "HELP"
reply = "Call 112."
`)
	g.start()
	ann := &phone{g: g, modem: modem, num: "+15550001111"}
	bob := &phone{g: g, modem: modem, num: "+15550002222", ref: 100}
	cid := &phone{g: g, modem: modem, num: "+15550003333", ref: 200}

	// confirmation checks that an inbound message got its confirmation,
	// and that it went out through the modem.
	confirmation := func(in routedShown, want string) {
		t.Helper()
		c := event(in, "confirmation")
		id, _, ok := strings.Cut(c, " to ")
		if !ok {
			t.Fatalf("%s got no confirmation: %+v", in.ID, in.Events)
		}
		s := g.waitState(id, "sent")
		if len(s.Deliveries) != 1 || s.Deliveries[0].Recipient != in.Peer {
			t.Errorf("confirmation %s went to %+v, want %s", id, s.Deliveries, in.Peer)
		}
		if r := g.routedShow(id); r.Channel != "keyword" || !strings.Contains(*textOf(g, id), want) {
			t.Errorf("confirmation %s: channel %q, text %q, want %q", id, r.Channel, *textOf(g, id), want)
		}
	}
	confirmation(ann.says("JOIN flood"), "You joined flood.")
	confirmation(bob.says("join FLOOD"), "You joined flood.")
	confirmation(cid.says("JOIN other"), "You joined other.")

	send := func(to string, flags ...string) routedShown {
		t.Helper()
		out, errs, code := g.cli(append([]string{"send", "--to", to, "--text", "to " + to, "--no-report"}, flags...)...)
		if code != 0 {
			t.Fatalf("send to %s: exit %d: %s", to, code, errs)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		return g.routedShow(lines[len(lines)-1])
	}
	if got := recipientsOf(send("topic:flood")); !slices.Equal(got, []string{ann.num, bob.num}) {
		t.Errorf("topic:flood went to %v, want its subscribers %s and %s only", got, ann.num, bob.num)
	}

	confirmation(ann.says("STOP"), "You will get no more messages from us")
	if again := ann.says("stop"); event(again, "confirmation") != "" || !strings.Contains(event(again, "keyword"), "no confirmation") {
		t.Errorf("the second STOP: %+v", again.Events)
	}
	out, errs, code := g.cli("optout", "list")
	if code != 0 || !strings.Contains(out, "tel:"+ann.num) || !strings.Contains(out, "STOP") || strings.Contains(out, bob.num) {
		t.Errorf("optout list: exit %d\n%s%s", code, out, errs)
	}
	for _, to := range []string{"group:nurses", "topic:flood"} {
		s := send(to)
		if got := recipientsOf(s); !slices.Equal(got, []string{bob.num}) || !strings.Contains(event(s, "skipped"), ann.num+" skipped: opted out (STOP on ") {
			t.Errorf("%s went to %v, history %+v: want %s alone and %s skipped with the reason", to, got, s.Events, bob.num, ann.num)
		}
	}
	help := ann.says("HELP")
	if why := event(help, "no auto-reply"); !strings.Contains(why, "opted out") || event(help, "auto-reply") != "" {
		t.Errorf("the auto-reply to an opted-out number: %+v", help.Events)
	}
	_, errs, code = g.cli("send", "--to", ann.num, "--text", "direct")
	if code != 1 || !strings.Contains(errs, ann.num+" opted out (STOP on ") || !strings.Contains(errs, "in_reply_to") {
		t.Errorf("a direct send to an opted-out number: exit %d: %s", code, errs)
	}
	answer := send(ann.num, "--in-reply-to", help.ID)
	g.waitState(answer.ID, "sent")

	confirmation(ann.says("START"), "Welcome back")
	g.waitState(send(ann.num).ID, "sent")
	if got := recipientsOf(send("group:nurses")); !slices.Equal(got, []string{ann.num, bob.num}) {
		t.Errorf("after START group:nurses went to %v", got)
	}
	if out, _, _ := g.cli("optout", "list"); strings.Contains(out, ann.num) {
		t.Errorf("optout list after START:\n%s", out)
	}
}

// textOf reads a message's text.
func textOf(g *gateway, id string) *string {
	g.t.Helper()
	var s struct {
		Text *string `json:"text"`
	}
	out, errs, code := g.cli("show", id, "--json")
	if code != 0 {
		g.t.Fatalf("show: exit %d: %s", code, errs)
	}
	if err := json.Unmarshal([]byte(out), &s); err != nil || s.Text == nil {
		g.t.Fatalf("show %s: %v\n%s", id, err, out)
	}
	return s.Text
}

// TestPeopleByEmail: a mail to keywords@<domain> with JOIN <topic> (as
// its subject) subscribes its sender, confirmed by mail; a send to the
// topic reaches the mail subscriber and a phone subscribed with outpost
// topic subscribe (confirmed by SMS); STOP by mail (as the first line) is
// confirmed by mail, and the next send to the topic skips the address.
// A mail to keywords@ without a keyword is refused with the reason.
func TestPeopleByEmail(t *testing.T) {
	r := newRelay(t)
	r.start()
	g, addr := emailGateway(t, fmt.Sprintf("smtp = \"smtp://%s\"\n", r.addr))
	g.start()
	mailKeyword := func(id string, args ...string) string {
		t.Helper()
		out, code := swaks(t, addr, append([]string{"--from", "nurse@example.org", "--to", "keywords@sms.example.org", "--header", "Message-Id: <" + id + "@example.org>"}, args...)...)
		if code != 0 {
			t.Fatalf("mail refused: exit %d\n%s", code, out)
		}
		return out
	}
	mailKeyword("join", "--header", "Subject: JOIN flood", "--body", "please")
	if m, body := r.waitMail(1); !strings.Contains(body, "You joined flood.") || m.Header.Get("X-Envelope-To") != "nurse@example.org" {
		t.Errorf("the confirmation: to %s: %q", m.Header.Get("X-Envelope-To"), body)
	}
	out, errs, code := g.cli("topic", "subscribe", "flood", "+15555550100")
	if code != 0 || !strings.Contains(out, "confirmation sent") {
		t.Fatalf("topic subscribe: exit %d: %s%s", code, out, errs)
	}
	g.waitEcho("You joined flood. Send LEAVE flood to leave.")
	g.send("river rising", "--to", "topic:flood")
	if _, body := r.waitMail(2); body != "river rising" {
		t.Errorf("the broadcast by mail: %q", body)
	}
	g.waitEcho("river rising")

	mailKeyword("stop", "--header", "Subject: hello", "--body", "STOP\n\nthanks")
	if _, body := r.waitMail(3); !strings.Contains(body, "You will get no more messages from us") {
		t.Errorf("the STOP confirmation: %q", body)
	}
	out, _, _ = g.cli("send", "--to", "topic:flood", "--text", "water falling")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	s := g.routedShow(lines[len(lines)-1])
	if got := recipientsOf(s); !slices.Equal(got, []string{"+15555550100"}) || !strings.Contains(event(s, "skipped"), "nurse@example.org skipped: opted out (STOP") {
		t.Errorf("after STOP by mail the topic went to %v: %+v", got, s.Events)
	}
	g.waitEcho("water falling")
	if out, code := swaks(t, addr, "--from", "nurse@example.org", "--to", "keywords@sms.example.org", "--body", "what is this"); code == 0 || !strings.Contains(out, "no keyword") {
		t.Errorf("a mail without a keyword: exit %d\n%s", code, out)
	}
	if n := len(r.mails()); n != 3 {
		t.Errorf("%d mails at the relay, want 3", n)
	}
}
