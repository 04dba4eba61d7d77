package bridge_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost-sms/outpost/bridge"
	"github.com/outpost-sms/outpost/store"
)

func TestParseAddress(t *testing.T) {
	for _, c := range []struct{ in, scheme, value, str string }{
		{"+15555550100", "tel", "+15555550100", "tel:+15555550100"},
		{" tel:+15555550100 ", "tel", "+15555550100", "tel:+15555550100"},
		{"0712345678", "tel", "0712345678", "tel:0712345678"},
		{"TEL:+15555550100", "tel", "+15555550100", "tel:+15555550100"},
		{"group:nurses", "group", "nurses", "group:nurses"},
		{"mailto:ops@example.org", "mailto", "ops@example.org", "mailto:ops@example.org"},
		{"xmpp:nurse@chat.example.org/phone", "xmpp", "nurse@chat.example.org/phone", "xmpp:nurse@chat.example.org/phone"},
		{"xmpp:chat.example.org", "xmpp", "chat.example.org", "xmpp:chat.example.org"},
		{"webhook:crm", "webhook", "crm", "webhook:crm"},
		{"mqtt", "mqtt", "", "mqtt"},
		{"hub", "hub", "", "hub"},
		{"openrosa", "openrosa", "", "openrosa"},
		{"mqtt:sensor-7", "mqtt", "sensor-7", "mqtt:sensor-7"},
	} {
		a, err := bridge.ParseAddress(c.in)
		if err != nil || a.Scheme != c.scheme || a.Value != c.value || a.String() != c.str {
			t.Errorf("ParseAddress(%q) = %+v %q, %v; want %s %q %q", c.in, a, a.String(), err, c.scheme, c.value, c.str)
		}
	}
	for _, c := range []struct{ in, want string }{
		{"", "empty address"},
		{"+1555abc", `bad phone number: "+1555abc" may only contain digits`},
		{"tel:+12", `bad phone number: "tel:+12" must have 3 to 20 digits`},
		{"tel:+123456789012345678901", "must have 3 to 20 digits"},
		{"nurses", `"nurses" is not an address`},
		{"group:", "group:: a name must have 1 to 64 characters"},
		{"webhook:a/b", `webhook:a/b: character '/' at 1 is not allowed`},
		{"mailto:not-an-address", "mailto:not-an-address: not an email address"},
		{"mailto:Ops <ops@example.org>", "mailto:Ops <ops@example.org>: not an email address (give one plain address"},
		{"xmpp:@example.org", "xmpp:@example.org: not a Jabber ID (the part before '@' is empty)"},
		{"xmpp:user@", "xmpp:user@: not a Jabber ID (the domain is missing"},
		{"xmpp:a b@example.org", "xmpp:a b@example.org: not a Jabber ID (white space"},
		{"fax:+15555550100", `fax:+15555550100: unknown scheme "fax"`},
		{"mqtt:", `mqtt:: give "mqtt" alone`},
		{"hub:", `hub:: give "hub" alone`},
	} {
		_, err := bridge.ParseAddress(c.in)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseAddress(%q): %v; want an error with %q", c.in, err, c.want)
		}
	}
}

// hook is a connector that delivers to webhook: addresses: it refuses the
// name "nope" and reports every delivery on got.
type hook struct {
	got chan store.Delivery
	mu  sync.Mutex
	msg []store.Message
}

func (k *hook) Name() string                                    { return "webhook" }
func (k *hook) Scheme() string                                  { return bridge.SchemeWebhook }
func (k *hook) Run(ctx context.Context, _ *bridge.Router) error { <-ctx.Done(); return nil }
func (k *hook) ValidateAddress(name string) error {
	if name == "nope" {
		return errors.New("no webhook is named \"nope\" (configured: crm)")
	}
	return nil
}
func (k *hook) Deliver(ctx context.Context, m store.Message, d store.Delivery) (bridge.Outcome, error) {
	k.mu.Lock()
	k.msg = append(k.msg, m)
	k.mu.Unlock()
	k.got <- d
	return bridge.Outcome{State: store.Delivered, Detail: "posted to " + d.Recipient}, nil
}

// TestSendByScheme: a send request reaches the connector of each
// address's scheme (one delivery per recipient: connector and the address
// within its scheme; tel the bare number, groups expanded), and an address
// no connector delivers to, or one its connector refuses, is refused
// before anything is stored.
func TestSendByScheme(t *testing.T) {
	f := &fake{}
	h, start := newHub(t, f)
	k := &hook{got: make(chan store.Delivery, 4)}
	h.Add(k)
	h.Groups = map[string][]string{"team": {"+15555550101", "+15555550100"}}
	start()

	id := submitReq(t, h, bridge.SendRequest{Text: "fire drill at 3", To: []string{"+15555550100", "webhook:crm", "group:team", "tel:+15555550100"}})
	select {
	case d := <-k.got:
		if d.MessageID != id || d.Connector != "webhook" || d.Recipient != "crm" {
			t.Errorf("the webhook got %+v", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the webhook connector got nothing")
	}
	v := waitState(t, h, id, store.Sent)
	var got []string
	for _, d := range v.Deliveries {
		got = append(got, d.Connector+" "+d.Recipient)
	}
	if want := "sms +15555550100|webhook crm|sms +15555550101"; strings.Join(got, "|") != want {
		t.Errorf("deliveries %q, want %q", strings.Join(got, "|"), want)
	}
	if v.Peer != "+15555550100,webhook:crm,+15555550101" {
		t.Errorf("peer %q", v.Peer)
	}
	if f.Calls() != 2 {
		t.Errorf("the SMS connector was called %d times, want 2", f.Calls())
	}

	for _, c := range []struct {
		to   []string
		want string
	}{
		{[]string{"+15555550100", "mailto:ops@example.org"}, `"to": mailto:ops@example.org: no connector delivers to mailto: addresses (configure [email])`},
		{[]string{"xmpp:nurse@example.org"}, `"to": xmpp:nurse@example.org: no connector delivers to xmpp: addresses (configure [xmpp])`},
		{[]string{"hub"}, `"to": hub: no connector delivers to hub: addresses`},
		{[]string{"webhook:nope"}, `"to": webhook:nope: no webhook is named "nope" (configured: crm)`},
		{[]string{"webhook:crm", "fax:1234"}, `fax:1234: unknown scheme "fax"`},
	} {
		_, err := h.Submit(context.Background(), bridge.SendRequest{ID: "refused-1", Text: "x", To: c.to, Source: "test"})
		if !errors.Is(err, bridge.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("send to %v: %v; want ErrInvalid with %q", c.to, err, c.want)
		}
		if _, err := h.Message(context.Background(), "refused-1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("send to %v: refused, yet stored (%v)", c.to, err)
		}
	}
}

// TestRoutesNameAddresses: a route may be an address (webhook:crm → the
// webhook connector, recipient crm) beside a connector's bare name, and a
// route no connector delivers to is reported.
func TestRoutesNameAddresses(t *testing.T) {
	f := &fake{}
	h, start := newHub(t, f)
	k := &hook{got: make(chan store.Delivery, 4)}
	h.Add(k)
	h.Routes = []string{"webhook:crm", "sms"}
	if err := h.CheckRoutes(); err != nil {
		t.Fatal(err)
	}
	start()
	text := "hello"
	m := &store.Message{Peer: "+15555550100", Text: &text, Source: "sms", State: store.Complete}
	if err := h.Store.Update(context.Background(), func(tx *store.Tx) error { return h.StoreInbound(tx, m, "test") }); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-k.got:
		if d.MessageID != m.ID || d.Recipient != "crm" {
			t.Errorf("the webhook got %+v", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the webhook connector got nothing")
	}
	v, err := h.Message(context.Background(), m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Deliveries) != 2 || v.Deliveries[0].Connector != "webhook" || v.Deliveries[0].Recipient != "crm" ||
		v.Deliveries[1].Connector != "sms" || v.Deliveries[1].Recipient != "" {
		t.Errorf("deliveries %+v", v.Deliveries)
	}

	h.FormRoutes = []string{"mailto:forms@example.org", "webhook:a/b"}
	err = h.CheckRoutes()
	for _, want := range []string{"routes: mailto:forms@example.org: no connector delivers to mailto: addresses (configure [email])",
		"routes: webhook:a/b: character '/' at 1 is not allowed"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckRoutes: %v; want %q", err, want)
		}
	}
}

// TestMessageOrigin: a message records its channel, its sender's address
// and its kind: a send from the request's source and sender, an inbound
// one from its source and what it carries.
func TestMessageOrigin(t *testing.T) {
	h, start := newHub(t, &fake{})
	start()
	ctx := context.Background()
	id, err := h.Submit(ctx, bridge.SendRequest{To: []string{"+15555550100"}, Text: "hi", Source: "mqtt", From: "mqtt:dev-1"})
	if err != nil {
		t.Fatal(err)
	}
	data, err := h.Submit(ctx, bridge.SendRequest{To: []string{"+15555550100"}, Data: []byte{1, 2}, Source: "cli"})
	if err != nil {
		t.Fatal(err)
	}
	xml := "<data/>"
	form := &store.Message{Peer: "+15555550101", Text: &xml, FormID: "f1", Source: "sms", FromAddr: "tel:+15555550101", State: store.Complete}
	raw := &store.Message{Peer: "unknown", Data: []byte{0xff}, Source: "sms", State: store.Undecodable}
	text := "yes"
	email := &store.Message{Peer: "ops@example.org", Text: &text, Source: "email", Channel: "email", FromAddr: "mailto:ops@example.org", State: store.Complete}
	err = h.Store.Update(ctx, func(tx *store.Tx) error {
		return errors.Join(h.StoreInbound(tx, form, ""), h.StoreInbound(tx, raw, ""), h.StoreInbound(tx, email, ""))
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ id, channel, from, kind string }{
		{id, "mqtt", "mqtt:dev-1", "text"},
		{data, "cli", "", "data"},
		{form.ID, "sms", "tel:+15555550101", "form"},
		{raw.ID, "sms", "", "data"},
		{email.ID, "email", "mailto:ops@example.org", "text"},
	} {
		v, err := h.Message(ctx, c.id)
		if err != nil {
			t.Fatal(err)
		}
		if v.Channel != c.channel || v.FromAddr != c.from || v.Kind != c.kind {
			t.Errorf("message %s: channel %q from %q kind %q; want %q %q %q", c.id, v.Channel, v.FromAddr, v.Kind, c.channel, c.from, c.kind)
		}
	}
}
