package bridge_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/outpost-sms/outpost/bridge"
	"github.com/outpost-sms/outpost/store"
)

// countryCode sets the box's country code for one test.
func countryCode(t *testing.T, cc string) {
	t.Helper()
	bridge.SetCountryCode(cc)
	t.Cleanup(func() { bridge.SetCountryCode("") })
}

// TestCanonicalPhone: one form of a phone number: tel:, separators and
// 00 go; a bare number of 8 digits or more is the international one (the
// encoder sends it so); a national number is read with the country code
// when there is one; +0… is refused.
func TestCanonicalPhone(t *testing.T) {
	for _, cc := range []string{"", "254"} {
		countryCode(t, cc)
		for _, c := range []struct{ in, want, with254 string }{
			{"+254712345678", "+254712345678", ""},
			{"00254712345678", "+254712345678", ""},
			{"254712345678", "+254712345678", ""},
			{"tel:+254 (712) 345-678", "+254712345678", ""},
			{"+254.712.345.678", "+254712345678", ""},
			{"0712345678", "0712345678", "+254712345678"},
			{"0712 345 678", "0712345678", "+254712345678"},
			{"12345", "12345", ""},
			{"+0254712345603", "error: a country code never starts with 0", ""},
		} {
			want := c.want
			if cc != "" && c.with254 != "" {
				want = c.with254
			}
			got, err := bridge.CanonicalPhone(c.in)
			if err != nil {
				got = "error: " + err.Error()
			}
			if got != want && !(strings.HasPrefix(want, "error: ") && strings.Contains(got, want[7:])) {
				t.Errorf("country code %q: CanonicalPhone(%q) = %q, want %q", cc, c.in, got, want)
			}
		}
	}
	if a, err := bridge.ParseAddress("mailto:Bad@Example.ORG"); err != nil || a.String() != "mailto:bad@example.org" {
		t.Errorf("mailto: %v %v", a, err)
	}
}

// TestOptOutsAndBansWhateverTheSpelling (#2, #3): an opt-out and a ban
// hold however the number or the mail address is written in the send,
// the topics have one subscriber per person, and the rows stored in
// another spelling before (tel:00…, mailto: in capitals) still match
// once rewritten at start (CanonicalStored).
func TestOptOutsAndBansWhateverTheSpelling(t *testing.T) {
	countryCode(t, "254")
	h, _ := newHub(t, &fake{})
	h.Add(&mailbox{hook{got: make(chan store.Delivery, 10)}})
	h.Keywords = testKeywords
	ctx := context.Background()
	inbound(t, h, "+254712345678", "STOP")
	if _, err := h.Bans(ctx, "ban", []byte(`{"addr": "+254712345693"}`), "cli", "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Bans(ctx, "ban", []byte(`{"addr": "mailto:Bad@Example.org"}`), "cli", "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.People(ctx, "optout-add", []byte(`{"addr": "mailto:Quiet@Example.org"}`), "cli"); err != nil {
		t.Fatal(err)
	}
	send := func(to string) error {
		_, err := h.Submit(ctx, bridge.SendRequest{To: []string{to}, Text: "hi", Source: "test"})
		return err
	}
	for _, to := range []string{"00254712345678", "254712345678", "0712345678", "+254 712 345 678", "tel:+254-712-345-678"} {
		if err := send(to); !errors.Is(err, bridge.ErrOptedOut) {
			t.Errorf("a send to %s after STOP from +254712345678: %v", to, err)
		}
	}
	for _, to := range []string{"00254712345693", "254712345693", "0712345693"} {
		if err := send(to); !errors.Is(err, bridge.ErrBanned) {
			t.Errorf("a send to %s, banned as +254712345693: %v", to, err)
		}
	}
	if err := send("mailto:bad@example.org"); !errors.Is(err, bridge.ErrBanned) {
		t.Errorf("a send to mailto:bad@example.org, banned as Bad@Example.org: %v", err)
	}
	if err := send("mailto:QUIET@example.org"); !errors.Is(err, bridge.ErrOptedOut) {
		t.Errorf("a send to mailto:QUIET@example.org, opted out as Quiet@Example.org: %v", err)
	}
	// A mail from the banned address, as the email connector stores it.
	text := "JOIN flood"
	m := &store.Message{Peer: "mailto:bad@example.org", FromAddr: "mailto:bad@example.org", Source: "email", Channel: "email", State: store.Complete, Text: &text}
	if err := h.Store.Update(ctx, func(tx *store.Tx) error { return h.StoreInbound(tx, m, "test") }); err != nil {
		t.Fatal(err)
	}
	if v, _ := h.Message(ctx, m.ID); len(v.Tags) != 1 || v.Tags[0] != "banned" {
		t.Errorf("a mail from bad@example.org, banned as Bad@Example.org: tags %v\n%s", v.Tags, details(v))
	}
	if _, err := h.Submit(ctx, bridge.SendRequest{To: []string{"+254712345600"}, Text: "relay", Source: "email", From: "mailto:BAD@example.org"}); !errors.Is(err, bridge.ErrBanned) {
		t.Errorf("a send asked by BAD@example.org: %v", err)
	}

	for _, addr := range []string{"0712345690", "+254712345690", "00254712345690"} {
		if _, err := h.People(ctx, "topic-subscribe", []byte(`{"topic": "flood", "addr": "`+addr+`"}`), "cli"); err != nil {
			t.Fatal(err)
		}
	}
	inbound(t, h, "0712345690", "JOIN flood")
	list, err := h.People(ctx, "topic-list", []byte(`{"topic": "flood"}`), "cli")
	if err != nil || len(list.Subscriptions) != 1 || list.Subscriptions[0].Addr != "tel:+254712345690" {
		t.Errorf("one person, three spellings: %+v %v", list.Subscriptions, err)
	}

	// Rows recorded in other spellings before the fix.
	err = h.Store.Update(ctx, func(tx *store.Tx) error {
		if _, err := tx.SetOptOut(store.OptOut{Addr: "tel:00254712345670", Word: "STOP"}); err != nil {
			return err
		}
		if _, err := tx.SetBan(store.Ban{Addr: "mailto:Old@Example.org", By: "bob"}); err != nil {
			return err
		}
		_, err := tx.Subscribe(store.Subscription{Topic: "flood", Addr: "tel:0712345690"})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := h.CanonicalStored(ctx); err != nil || n == 0 {
		t.Fatalf("CanonicalStored: %d %v", n, err)
	}
	audit, _ := h.AuditLog(ctx, bridge.AuditQuery{Who: "outpost run"})
	if len(audit) != 3 || audit[0].Op != "readdress" {
		t.Errorf("the rewrite's audit: %+v", audit)
	}
	if n, err := h.CanonicalStored(ctx); err != nil || n != 0 {
		t.Errorf("a second CanonicalStored: %d %v", n, err)
	}
	if err := send("+254712345670"); !errors.Is(err, bridge.ErrOptedOut) {
		t.Errorf("an opt-out stored as tel:00254712345670: %v", err)
	}
	if err := send("mailto:old@example.org"); !errors.Is(err, bridge.ErrBanned) {
		t.Errorf("a ban stored as mailto:Old@Example.org: %v", err)
	}
	list, _ = h.People(ctx, "topic-list", []byte(`{"topic": "flood"}`), "cli")
	if len(list.Subscriptions) != 1 {
		t.Errorf("after the rewrite: %+v", list.Subscriptions)
	}
}

// TestNationalStop (#5): with country code 254, a STOP from 0712345699
// (as networks give local senders) opts out the contact +254712345699,
// is confirmed to it, and silences group, topic and direct sends.
func TestNationalStop(t *testing.T) {
	countryCode(t, "254")
	h, _ := newHub(t, &fake{})
	h.Keywords = testKeywords
	ctx := context.Background()
	for _, c := range []bridge.ContactInput{
		{Name: ptr("Wanjiku"), Phones: &[]string{"+254712345699"}},
		{Name: ptr("Otieno"), Phones: &[]string{"0712 345 698"}},
	} {
		if _, err := h.AddContact(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.AddGroup(ctx, "staff"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.GroupMembers(ctx, "staff", []string{"Wanjiku", "Otieno"}, nil); err != nil {
		t.Fatal(err)
	}
	inbound(t, h, "0712345699", "JOIN flood")
	inbound(t, h, "+254712345698", "JOIN flood")
	stop := inbound(t, h, "0712345699", "STOP")
	if !strings.Contains(details(stop), "tel:+254712345699 opted out (STOP)") || !strings.Contains(details(stop), "confirmation: ") {
		t.Errorf("the STOP:\n%s", details(stop))
	}
	if got := outTo(t, h, "+254712345699"); len(got) != 2 || got[1] != "Stopped." {
		t.Errorf("sent to +254712345699: %q, want the JOIN's and the STOP's confirmations", got)
	}
	for _, to := range []string{"group:staff", "topic:flood"} {
		id, err := h.Submit(ctx, bridge.SendRequest{To: []string{to}, Text: "meeting", Source: "test"})
		if err != nil {
			t.Fatal(to, err)
		}
		v, _ := h.Message(ctx, id)
		if len(v.Deliveries) != 1 || v.Deliveries[0].Recipient != "+254712345698" || !strings.Contains(details(v), "+254712345699 skipped: opted out") {
			t.Errorf("%s: %+v\n%s", to, v.Deliveries, details(v))
		}
	}
	if _, err := h.Submit(ctx, bridge.SendRequest{To: []string{"+254712345699"}, Text: "hi", Source: "test"}); !errors.Is(err, bridge.ErrOptedOut) {
		t.Errorf("a direct send: %v", err)
	}
	// The answer to its own message still goes.
	if _, err := h.Submit(ctx, bridge.SendRequest{To: []string{"+254712345699"}, Text: "ok", Source: "test", InReplyTo: stop.ID}); err != nil {
		t.Errorf("an answer to its STOP: %v", err)
	}
}

// TestBanStopsWhatIsQueued (#4): a ban stops what was queued or
// scheduled for the address before it (SMS and mail), failing it with the
// reason, and a retry of it fails again with the reason.
func TestBanStopsWhatIsQueued(t *testing.T) {
	f := &fake{ready: make(chan struct{})}
	h, start := newHub(t, waiting{f})
	mb := &mailbox{hook{got: make(chan store.Delivery, 10)}}
	h.Add(mb)
	h.Groups = map[string][]string{"nurses": {"+15550001111", "+15550002222"}}
	changes := make(chan bridge.StatusChange, 100)
	h.OnStatus(func(c bridge.StatusChange) { changes <- c })
	ctx := context.Background()
	id, err := h.Submit(ctx, bridge.SendRequest{To: []string{"group:nurses"}, Text: "meeting at 3", Source: "test"})
	if err != nil {
		t.Fatal(err)
	}
	later, err := h.Submit(ctx, bridge.SendRequest{To: []string{"mailto:Ops@Example.org"}, Text: "report", Source: "test", NotBefore: time.Now().Add(300 * time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{"0015550001111", "mailto:ops@example.ORG"} {
		if _, err := h.Bans(ctx, "ban", []byte(`{"addr": "`+addr+`", "reason": "abuse"}`), "cli", "alice"); err != nil {
			t.Fatal(err)
		}
	}
	start()
	close(f.ready)
	ended := func(want int) map[string]string {
		done := map[string]string{}
		for len(done) < want {
			select {
			case c := <-changes:
				if c.State == store.Sent || c.State == store.Failed || c.State == store.Delivered {
					done[c.To] = c.State
				}
			case d := <-mb.got:
				t.Errorf("mailed to a banned address: %+v", d)
			case <-time.After(10 * time.Second):
				t.Fatalf("the deliveries did not end: %v", done)
			}
		}
		return done
	}
	if done := ended(3); done["+15550001111"] != store.Failed || done["+15550002222"] != store.Sent || done["Ops@Example.org"] != store.Failed && done["ops@example.org"] != store.Failed {
		t.Errorf("ends: %v", done)
	}
	for _, mid := range []string{id, later} {
		v, _ := h.Message(ctx, mid)
		for _, d := range v.Deliveries {
			if d.Recipient != "+15550002222" && (d.State != store.Failed || !strings.Contains(d.LastError, "banned by alice at ") || !strings.Contains(d.LastError, "(abuse): not sent")) {
				t.Errorf("%s %s: %s %q", mid, d.Recipient, d.State, d.LastError)
			}
		}
	}
	if _, err := h.Retry(ctx, id, "bob"); err != nil {
		t.Fatal(err)
	}
	if done := ended(1); done["+15550001111"] != store.Failed {
		t.Errorf("the retry: %v", done)
	}
	if f.Calls() != 1 {
		t.Errorf("%d SMS went out, want 1 (to +15550002222)", f.Calls())
	}
}

// TestSkippedEachNamed (#15): a send none of whose recipients is left
// names each skipped one with its reason, banned ones too.
func TestSkippedEachNamed(t *testing.T) {
	h, _ := newHub(t, &fake{})
	h.Keywords = testKeywords
	h.Groups = map[string][]string{"ward": {"+15550001111", "+15550002222"}}
	ctx := context.Background()
	inbound(t, h, "+15550001111", "STOP")
	if _, err := h.Bans(ctx, "ban", []byte(`{"addr": "+15550002222", "reason": "abuse"}`), "cli", "alice"); err != nil {
		t.Fatal(err)
	}
	_, err := h.Submit(ctx, bridge.SendRequest{To: []string{"group:ward"}, Text: "hi", Source: "test"})
	if !errors.Is(err, bridge.ErrInvalid) || err == nil || !strings.Contains(err.Error(), "+15550001111 skipped: opted out (STOP on ") ||
		!strings.Contains(err.Error(), "+15550002222 skipped: banned by alice at ") || strings.Contains(err.Error(), "every recipient opted out") {
		t.Errorf("a group of one opted out and one banned: %v", err)
	}
}

// TestStopVariants (#15): a STOP is a STOP in fullwidth letters, followed
// by emoji or punctuation, or repeated; not with other words after it.
func TestStopVariants(t *testing.T) {
	h, _ := newHub(t, &fake{})
	h.Keywords = testKeywords
	for i, c := range []struct {
		text string
		stop bool
	}{
		{"ＳＴＯＰ", true},
		{"STOP 🙏", true},
		{"stop stop", true},
		{"Stop!!! 🙏🏽❤️", true},
		{"  STOP. STOP!", true},
		{"stop please", false},
		{"STOP 2", false},
		{"🙏", false},
	} {
		from := fmt.Sprintf("+1555000%04d", i)
		v := inbound(t, h, from, c.text)
		if got := strings.Contains(details(v), "opted out (STOP)"); got != c.stop {
			t.Errorf("%q: opted out %v, want %v\n%s", c.text, got, c.stop, details(v))
		}
	}
	v := inbound(t, h, "+15559990000", "JOIN flood 🙏")
	if !strings.Contains(details(v), "joined topic flood") {
		t.Errorf("JOIN flood 🙏:\n%s", details(v))
	}
}

// TestRefusedAddresses (#15): a contact's number +0… is refused (no
// country code starts with 0); a ban of what a ban does not take names
// only what it takes.
func TestRefusedAddresses(t *testing.T) {
	h, _ := newHub(t, &fake{})
	ctx := context.Background()
	_, err := h.AddContact(ctx, bridge.ContactInput{Name: ptr("Zero"), Phones: &[]string{"+0254712345603"}})
	if !errors.Is(err, bridge.ErrInvalid) || !strings.Contains(err.Error(), "a country code never starts with 0") {
		t.Errorf("+0254712345603: %v", err)
	}
	for _, op := range []string{"ban", "unban"} {
		for _, addr := range []string{"nonsense", "group:staff", "webhook:crm", "hub", "topic:flood"} {
			_, err := h.Bans(ctx, op, []byte(`{"addr": "`+addr+`"}`), "cli", "alice")
			msg := ""
			if err != nil {
				msg = strings.ReplaceAll(err.Error(), `"`+addr+`"`, "")
			}
			if !errors.Is(err, bridge.ErrInvalid) || !strings.Contains(msg, "a ban is of a phone number") || !strings.Contains(msg, "mailto:") ||
				strings.Contains(msg, "group:") || strings.Contains(msg, "webhook:") || strings.Contains(msg, "hub") || strings.Contains(msg, "xmpp") {
				t.Errorf("%s %s: %v", op, addr, err)
			}
		}
	}
}

// TestRouteFromCanonical (#2): a route's from matches the sender in its
// canonical form too: "+2547*" matches a sender the network gave as
// 0712… (country code 254) or as 00254….
func TestRouteFromCanonical(t *testing.T) {
	countryCode(t, "254")
	text := "hello"
	for _, from := range []string{"0712345678", "00254712345678", "+254712345678"} {
		m := &store.Message{Peer: from, FromAddr: "tel:" + from, Channel: "sms", Text: &text}
		for _, glob := range []string{"+2547*", "tel:+2547*"} {
			if !(bridge.Route{From: glob, Tag: "x"}).Matches(m) {
				t.Errorf("from %q does not match %s", glob, from)
			}
		}
		if (bridge.Route{From: "+2541*", Tag: "x"}).Matches(m) {
			t.Errorf("from +2541* matches %s", from)
		}
	}
}
