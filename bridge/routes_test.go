package bridge_test

import (
	"context"
	"strings"
	"testing"

	"github.com/outpost-sms/outpost/bridge"
	"github.com/outpost-sms/outpost/store"
)

// mailbox is a connector that delivers to mailto: addresses.
type mailbox struct{ hook }

func (b *mailbox) Name() string   { return "email" }
func (b *mailbox) Scheme() string { return bridge.SchemeMailto }

// TestRouteMatches: a route matches when every field it gives matches:
// channel, from (a glob on the number as received and on its tel: form),
// modem, keyword (the first word, case-insensitive; not a form's) and
// form.
func TestRouteMatches(t *testing.T) {
	text := func(s string) *string { return &s }
	sms := store.Message{Peer: "+254712345678", FromAddr: "tel:+254712345678", Modem: "m1", Channel: "sms", Text: text("  help me please")}
	form := store.Message{Peer: "+254712345678", FromAddr: "tel:+254712345678", Modem: "m2", Channel: "sms", Text: text("<data/>"), FormID: "enquete"}
	for _, c := range []struct {
		r         bridge.Route
		sms, form bool
	}{
		{bridge.Route{}, true, true},
		{bridge.Route{Channel: "sms"}, true, true},
		{bridge.Route{Channel: "email"}, false, false},
		{bridge.Route{From: "+2547*"}, true, true},
		{bridge.Route{From: "tel:+2547*"}, true, true},
		{bridge.Route{From: "+2541*"}, false, false},
		{bridge.Route{From: "+25471234567?"}, true, true},
		{bridge.Route{Modem: "m1"}, true, false},
		{bridge.Route{Keyword: "HELP"}, true, false},
		{bridge.Route{Keyword: "hel"}, false, false},
		{bridge.Route{Keyword: "me"}, false, false},
		{bridge.Route{Form: "enquete"}, false, true},
		{bridge.Route{Form: "other"}, false, false},
		{bridge.Route{Channel: "sms", From: "+2547*", Modem: "m1", Keyword: "Help"}, true, false},
		{bridge.Route{Channel: "sms", From: "+2547*", Modem: "m9", Keyword: "Help"}, false, false},
	} {
		if got := c.r.Matches(&sms); got != c.sms {
			t.Errorf("%+v on the SMS: %v, want %v", c.r, got, c.sms)
		}
		if got := c.r.Matches(&form); got != c.form {
			t.Errorf("%+v on the form: %v, want %v", c.r, got, c.form)
		}
	}
	empty := store.Message{Peer: "+254712345678", Channel: "sms", Text: text("   ")}
	if (bridge.Route{Keyword: "help"}).Matches(&empty) {
		t.Error("a keyword matched an empty text")
	}
	for text, want := range map[string]bool{"Help! now": true, "help,": true, "help.me": false, "helper": false, "STOP?": false} {
		m := store.Message{Peer: "+254712345678", Channel: "sms", Text: &text}
		if got := (bridge.Route{Keyword: "HELP"}).Matches(&m); got != want {
			t.Errorf("keyword HELP on %q: %v, want %v", text, got, want)
		}
	}
}

// TestRoutesApply: the routes are evaluated in order for every inbound
// message, besides the default deliveries, which always happen; each adds
// its copies (no destination twice, none the defaults already have), the
// first with a reply sends it to the sender as a send request of its own
// (channel "route", its history naming the route and the message), each
// tag is kept on the message, and stop ends the evaluation. All of it is
// in the message's transaction.
func TestRoutesApply(t *testing.T) {
	f := &fake{}
	h, _ := newHub(t, f)
	h.Add(&hook{})
	h.Add(&mailbox{})
	h.Routes = []string{"webhook:crm"}
	h.FormRoutes = []string{"webhook:crm"}
	h.Rules = []bridge.Route{
		{Keyword: "help", To: []string{"mailto:ops@example.org", "webhook:kobo"}, Reply: "Thanks, we got it.", Tag: "help"},
		{From: "+2547*", To: []string{"webhook:kobo", "webhook:crm", "mailto:ops@example.org"}, Reply: "second reply", Tag: "kenya"},
		{Channel: "sms", Modem: "m1", Tag: "m1", Stop: true},
		{Tag: "all"},
		{Form: "enquete", To: []string{"webhook:forms"}, Tag: "survey"},
	}
	if err := h.CheckRoutes(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	in := func(m *store.Message) bridge.MessageView {
		t.Helper()
		m.Source, m.State = "sms", store.Complete
		if m.Peer != "MPESA" {
			m.FromAddr = "tel:" + m.Peer
		}
		if err := h.Store.Update(ctx, func(tx *store.Tx) error { return h.StoreInbound(tx, m, "test") }); err != nil {
			t.Fatal(err)
		}
		v, err := h.Message(ctx, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	deliveries := func(v bridge.MessageView) string {
		var got []string
		for _, d := range v.Deliveries {
			got = append(got, d.Connector+" "+d.Recipient)
		}
		return strings.Join(got, "|")
	}
	replies := func() []bridge.MessageView {
		var out []bridge.MessageView
		h.Store.View(ctx, func(tx *store.Tx) error {
			ms, err := tx.Messages(store.Out, 100)
			for _, m := range ms {
				v, _ := h.Message(ctx, m.ID)
				out = append(out, v)
			}
			return err
		})
		return out
	}
	text := func(s string) *string { return &s }

	// Routes 1, 2 and 3 (which stops): three tags, the copies of 1 and 2
	// once each, and the reply of route 1 only.
	a := in(&store.Message{Peer: "+254712345678", Modem: "m1", Text: text("HELP me")})
	if strings.Join(a.Tags, ",") != "help,kenya,m1" {
		t.Errorf("tags %q, want help,kenya,m1", a.Tags)
	}
	if got, want := deliveries(a), "webhook crm|email ops@example.org|webhook kobo"; got != want {
		t.Errorf("deliveries %q, want %q", got, want)
	}
	rs := replies()
	if len(rs) != 1 {
		t.Fatalf("%d replies, want 1", len(rs))
	}
	r := rs[0]
	if r.Channel != bridge.ReplyChannel || r.Peer != "+254712345678" || *r.Text != "Thanks, we got it." || deliveries(r) != "sms +254712345678" ||
		!strings.Contains(details(r), "accepted via route (auto-reply of route 1 to "+a.ID+")") {
		t.Errorf("reply %+v\n%s", r.Message, details(r))
	}
	if !strings.Contains(details(a), "route 1: "+r.ID+" to tel:+254712345678") {
		t.Errorf("the message's history does not name its reply:\n%s", details(a))
	}
	for _, d := range a.Deliveries[1:] {
		if d.State != store.Queued {
			t.Errorf("route delivery %+v", d)
		}
	}

	// Another modem: route 3 does not stop it, route 4 tags it; the
	// default delivery alone, no reply.
	b := in(&store.Message{Peer: "+15555550100", Modem: "m2", Text: text("hello")})
	if strings.Join(b.Tags, ",") != "all" || deliveries(b) != "webhook crm" {
		t.Errorf("tags %q, deliveries %q", b.Tags, deliveries(b))
	}
	if n := len(replies()); n != 1 {
		t.Errorf("%d replies, want still 1", n)
	}

	// A form: not a keyword's; routes 2, 4 and 5. Route 2's reply is the
	// first that applies.
	c := in(&store.Message{Peer: "+254700000001", Modem: "m2", Text: text("<d/>"), FormID: "enquete"})
	if strings.Join(c.Tags, ",") != "kenya,all,survey" {
		t.Errorf("form tags %q", c.Tags)
	}
	if got, want := deliveries(c), "webhook crm|webhook kobo|email ops@example.org|webhook forms"; got != want {
		t.Errorf("form deliveries %q, want %q", got, want)
	}
	if rs := replies(); len(rs) != 2 || rs[0].Peer != "+254700000001" || *rs[0].Text != "second reply" {
		t.Errorf("replies %+v", rs)
	}

	// A sender without an address: the reply is noted, the message kept
	// with its copies.
	d := in(&store.Message{Peer: "MPESA", Modem: "m1", Text: text("help")})
	if got, want := deliveries(d), "webhook crm|email ops@example.org|webhook kobo"; got != want {
		t.Errorf("deliveries %q, want %q", got, want)
	}
	if !strings.Contains(details(d), "no auto-reply: route 1: the sender's address is not known") {
		t.Errorf("history:\n%s", details(d))
	}
	if n := len(replies()); n != 2 {
		t.Errorf("%d replies, want still 2", n)
	}
}

// TestCheckRoutesNamesTheRoute: a route to an address no connector
// delivers to, or a bad one, is reported with the route's number.
func TestCheckRoutesNamesTheRoute(t *testing.T) {
	h, _ := newHub(t, &fake{})
	h.Add(&hook{})
	h.Rules = []bridge.Route{
		{To: []string{"webhook:crm"}},
		{To: []string{"mailto:ops@example.org"}},
		{To: []string{"group:team", "fax:1", "webhook:nope"}},
	}
	err := h.CheckRoutes()
	for _, want := range []string{
		`route 2: to "mailto:ops@example.org": no connector delivers to mailto: addresses (configure [email])`,
		`route 3: to "group:team": a route names addresses, not a group`,
		`route 3: to "fax:1": fax:1: unknown scheme "fax"`,
		`route 3: to "webhook:nope": no webhook is named "nope"`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckRoutes: %v\nlacks %q", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), "route 1") {
		t.Errorf("route 1 is good: %v", err)
	}
}

// TestRoutesSkipWhatTheMessageHas: a route to a destination the message
// already has from a connector's own rule (a webhook's subscription, a
// conversation's mail, made in OnInboundTx) adds no second delivery; its
// other addresses are still added.
func TestRoutesSkipWhatTheMessageHas(t *testing.T) {
	h, _ := newHub(t, &fake{})
	h.Add(&hook{})
	h.OnInboundTx(func(tx *store.Tx, m *store.Message) error {
		return tx.InsertDelivery(&store.Delivery{MessageID: m.ID, Connector: "webhook", Recipient: "subscribed"}, "subscribed")
	})
	h.Rules = []bridge.Route{{To: []string{"webhook:subscribed", "webhook:other", "webhook:subscribed"}}}
	text := "hi"
	m := &store.Message{Peer: "+15555550100", FromAddr: "tel:+15555550100", Text: &text, Source: "sms", State: store.Complete}
	if err := h.Store.Update(context.Background(), func(tx *store.Tx) error { return h.StoreInbound(tx, m, "test") }); err != nil {
		t.Fatal(err)
	}
	v, err := h.Message(context.Background(), m.ID)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range v.Deliveries {
		got = append(got, d.Recipient)
	}
	if strings.Join(got, ",") != "subscribed,other" {
		t.Errorf("deliveries %q, want subscribed,other", got)
	}
}

// A keyword route gets the keyword's argument: "{arg}" in its reply is
// what follows the keyword ("INFO flood" → "flood").
func TestKeywordArgument(t *testing.T) {
	r := bridge.Route{Keyword: "INFO", Reply: "About {arg}: call 112."}
	for text, want := range map[string]string{"INFO flood": "flood", "info:  Flood warning \n": "Flood warning", "INFO": "", "HELP flood": ""} {
		m := store.Message{Peer: "+254712345678", Channel: "sms", Text: &text}
		if got := r.KeywordArg(&m); got != want {
			t.Errorf("KeywordArg(%q) = %q, want %q", text, got, want)
		}
	}
	h, _ := newHub(t, &fake{})
	h.Rules = []bridge.Route{r}
	v := inbound(t, h, "+15550001111", "INFO flood")
	if got := outTo(t, h, "+15550001111"); len(got) != 1 || got[0] != "About flood: call 112." {
		t.Errorf("the reply was %q:\n%s", got, details(v))
	}
}
