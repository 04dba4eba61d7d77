package webhook_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost-sms/outpost/bridge"
	"github.com/outpost-sms/outpost/bridge/webhook"
	"github.com/outpost-sms/outpost/store"
	"github.com/outpost-sms/outpost/store/clock"
)

// post is one POST a receiver took.
type post struct {
	at      time.Time
	event   string
	id      string // X-Outpost-Delivery
	body    []byte
	message map[string]any
}

// receiver is a real HTTP server on a loopback port that checks every
// POST's signature with the secret and answers from a script (200 once
// it is used up). Its address stays the same across stop and start.
type receiver struct {
	t      *testing.T
	secret string
	addr   string

	mu      sync.Mutex
	script  []func(w http.ResponseWriter) // one per POST
	posts   []post
	badSig  int
	changed chan struct{}
	srv     *http.Server
}

func newReceiver(t *testing.T, secret string) *receiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{t: t, secret: secret, addr: ln.Addr().String(), changed: make(chan struct{}, 1)}
	r.serve(ln)
	t.Cleanup(r.stop)
	return r
}

func (r *receiver) url() string { return "http://" + r.addr + "/hook" }

func (r *receiver) serve(ln net.Listener) {
	r.srv = &http.Server{Handler: http.HandlerFunc(r.handle)}
	go r.srv.Serve(ln)
}

// stop closes the listener: POSTs meet "connection refused".
func (r *receiver) stop() { r.srv.Close() }

// start listens again on the same address.
func (r *receiver) start() {
	ln, err := net.Listen("tcp", r.addr)
	if err != nil {
		r.t.Fatal(err)
	}
	r.serve(ln)
}

func (r *receiver) handle(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	ts := req.Header.Get(webhook.HeaderTimestamp)
	var f func(http.ResponseWriter)
	defer func() {
		if f != nil {
			f(w) // outside the lock: it may hold the answer back
		}
		select {
		case r.changed <- struct{}{}:
		default:
		}
	}()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.secret != "" && !verify(r.secret, ts, body, req.Header.Get(webhook.HeaderSignature)) {
		r.badSig++
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	p := post{at: time.Now(), event: req.Header.Get(webhook.HeaderEvent), id: req.Header.Get(webhook.HeaderDelivery), body: body}
	var env struct {
		Event     string         `json:"event"`
		GatewayID string         `json:"gateway_id"`
		Message   map[string]any `json:"message"`
	}
	if err := json.Unmarshal(body, &env); err != nil || env.Event != p.event || env.GatewayID != "gw1" {
		r.t.Errorf("body %s (event header %q): %v", body, p.event, err)
	}
	p.message = env.Message
	if len(r.script) > 0 {
		f = r.script[0]
		r.script = r.script[1:]
	}
	r.posts = append(r.posts, p)
}

// verify checks a signature the way a receiver would, from the README's
// recipe: HMAC-SHA256 keyed with the secret over timestamp "." body.
func verify(secret, ts string, body []byte, sig string) bool {
	if ts == "" || !strings.HasPrefix(sig, "sha256=") {
		return false
	}
	return hmacEqual(webhookSign(secret, ts, body), sig)
}

// waitFor waits until cond holds, checking whenever the receiver takes a
// POST and at least every 20 ms (the store changes without telling).
func (r *receiver) waitFor(what string, d time.Duration, cond func() bool) {
	r.t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-r.changed:
		case <-tick.C:
		case <-deadline.C:
			r.t.Fatalf("%s: not within %s", what, d)
		}
	}
}

func (r *receiver) taken() []post {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]post(nil), r.posts...)
}

// smsFake is the SMS connector the router needs for sends: every send
// is sent at once.
type smsFake struct{}

func (smsFake) Name() string                                    { return "sms" }
func (smsFake) Run(ctx context.Context, _ *bridge.Router) error { <-ctx.Done(); return nil }
func (smsFake) Deliver(context.Context, store.Message, store.Delivery) (bridge.Outcome, error) {
	return bridge.Outcome{State: store.Sent, Detail: "sent"}, nil
}

type setup struct {
	router *bridge.Router
	st     *store.Store
}

func start(t *testing.T, hooks ...webhook.Hook) setup {
	t.Helper()
	return startWith(t, store.Options{}, hooks...)
}

func startWith(t *testing.T, opts store.Options, hooks ...webhook.Hook) setup {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "outpost.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	router := bridge.New(st, slog.New(slog.NewTextHandler(testWriter{t}, nil)))
	router.RetryMin, router.RetryMax = 5*time.Millisecond, 20*time.Millisecond
	router.MaxAttempts = 3
	router.Add(smsFake{})
	router.Add(webhook.New(webhook.Options{GatewayID: "gw1", Hooks: hooks, ModemNumbers: map[string]string{"m1": "+15555550123"}}, router))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { router.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; st.Close() })
	return setup{router, st}
}

func (s setup) inbound(t *testing.T, text, formID string) string {
	t.Helper()
	m := &store.Message{Peer: "+15555550100", Modem: "m1", Text: &text, State: store.Complete, FormID: formID}
	if formID != "" {
		m.Coding = "xform"
	}
	if err := s.st.Update(context.Background(), func(tx *store.Tx) error { return s.router.StoreInbound(tx, m, "test") }); err != nil {
		t.Fatal(err)
	}
	return m.ID
}

// hookDeliveries are the webhook deliveries of a message.
func (s setup) hookDeliveries(t *testing.T, id string) []store.Delivery {
	t.Helper()
	v, err := s.router.Message(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var out []store.Delivery
	for _, d := range v.Deliveries {
		if d.Connector == webhook.Name {
			out = append(out, d)
		}
	}
	return out
}

func (s setup) allFinished(t *testing.T, ids []string, state string) bool {
	for _, id := range ids {
		for _, d := range s.hookDeliveries(t, id) {
			if d.State != state {
				return false
			}
		}
	}
	return true
}

// Inbound SMS and forms are POSTed, signed, to the webhooks subscribed to
// their event, with the JSON the MQTT topics carry; a webhook not
// subscribed gets nothing.
func TestInboundAndFormsPosted(t *testing.T) {
	all := newReceiver(t, "s3cret")
	forms := newReceiver(t, "other secret")
	s := start(t,
		webhook.Hook{Name: "crm", URL: all.url(), Events: []string{webhook.EventIn, webhook.EventForm}, Secret: "s3cret"},
		webhook.Hook{Name: "odk", URL: forms.url(), Events: []string{webhook.EventForm}, Secret: "other secret"})
	in := s.inbound(t, "hello", "")
	form := s.inbound(t, "<data id=\"f1\"/>", "f1")
	all.waitFor("two POSTs to crm", 10*time.Second, func() bool { return len(all.taken()) == 2 })
	forms.waitFor("one POST to odk", 10*time.Second, func() bool { return len(forms.taken()) == 1 })
	got := all.taken()
	if got[0].event != "sms.in" || got[0].message["id"] != in || got[0].message["text"] != "hello" || got[0].message["to"] != "+15555550123" || got[0].message["from"] != "+15555550100" {
		t.Errorf("first POST: %s %s", got[0].event, got[0].body)
	}
	if got[1].event != "xform" || got[1].message["id"] != form || got[1].message["form_id"] != "f1" || got[1].message["xml"] != "<data id=\"f1\"/>" {
		t.Errorf("second POST: %s %s", got[1].event, got[1].body)
	}
	if f := forms.taken()[0]; f.event != "xform" || f.message["id"] != form {
		t.Errorf("odk got %s %s", f.event, f.body)
	}
	if all.badSig+forms.badSig != 0 {
		t.Errorf("%d POSTs with a bad signature", all.badSig+forms.badSig)
	}
	s.router.Wake(webhook.Name)
	all.waitFor("deliveries recorded", 10*time.Second, func() bool { return s.allFinished(t, []string{in, form}, store.Delivered) })
	if n := len(s.hookDeliveries(t, in)); n != 1 {
		t.Errorf("sms.in made %d webhook deliveries, want 1 (odk is not subscribed)", n)
	}
}

// The signature covers the timestamp: the same body with another
// timestamp does not verify, so a replay with a fresh timestamp is told.
func TestSignature(t *testing.T) {
	body := []byte(`{"event":"sms.in"}`)
	sig := webhook.Sign("k", "1700000000", body)
	if !verify("k", "1700000000", body, sig) || verify("k", "1700000001", body, sig) || verify("other", "1700000000", body, sig) {
		t.Fatalf("signature %s does not bind secret, timestamp and body", sig)
	}
}

// Every state change of a send is POSTed as sms.status with that
// transition, in order; the webhook's own deliveries make no events.
func TestStatusChangesPosted(t *testing.T) {
	r := newReceiver(t, "")
	s := start(t, webhook.Hook{Name: "crm", URL: r.url(), Events: []string{webhook.EventStatus}})
	id, err := s.router.Submit(context.Background(), bridge.SendRequest{To: []string{"+15555550100"}, Text: "hi", Source: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		v, _ := s.router.Message(context.Background(), id)
		for _, e := range v.Events {
			t.Logf("%d %s %s", e.DeliveryID, e.State, e.Detail)
		}
	}()
	r.waitFor("queued, sending, sent", 10*time.Second, func() bool { return len(r.taken()) >= 3 })
	r.waitFor("recorded", 10*time.Second, func() bool { return s.allFinished(t, []string{id}, store.Delivered) })
	var states []string
	for _, p := range r.taken() {
		if p.event != "sms.status" || p.message["id"] != id || p.message["to"] != "+15555550100" {
			t.Errorf("POST %s %s", p.event, p.body)
		}
		states = append(states, fmt.Sprint(p.message["state"]))
	}
	if strings.Join(states, ",") != "queued,sending,sent" {
		t.Errorf("states POSTed: %v", states)
	}
	if n := len(s.hookDeliveries(t, id)); n != 3 {
		t.Errorf("%d webhook deliveries for 3 state changes (a loop?)", n)
	}
	v, _ := s.router.Message(context.Background(), id)
	if v.State != store.Sent {
		t.Errorf("message state %q with its webhook copies, want sent", v.State)
	}
}

// A receiver that refuses connections for longer than MaxAttempts tries
// gets every event afterwards, in order, none failed and no attempt used
// up; another webhook that is up meanwhile gets its events at once.
func TestReceiverDownThenUp(t *testing.T) {
	down := newReceiver(t, "k1")
	up := newReceiver(t, "k2")
	s := start(t,
		webhook.Hook{Name: "crm", URL: down.url(), Events: []string{webhook.EventIn}, Secret: "k1", Timeout: 2 * time.Second},
		webhook.Hook{Name: "ops", URL: up.url(), Events: []string{webhook.EventIn}, Secret: "k2"})
	down.stop()
	var ids []string
	for i := range 5 {
		ids = append(ids, s.inbound(t, fmt.Sprintf("m%d", i), ""))
	}
	up.waitFor("ops gets all five while crm is down", 10*time.Second, func() bool { return len(up.taken()) == 5 })
	// crm's first event is tried well over MaxAttempts times.
	down.waitFor("crm's first event tried 3×MaxAttempts times", 10*time.Second, func() bool {
		n := 0
		v, _ := s.router.Message(context.Background(), ids[0])
		for _, e := range v.Events {
			if strings.Contains(e.Detail, "connection refused") {
				n++
			}
		}
		return n >= 3*s.router.MaxAttempts
	})
	if got := down.taken(); len(got) != 0 {
		t.Fatalf("a stopped receiver got %d POSTs", len(got))
	}
	down.start()
	down.waitFor("crm gets all five", 10*time.Second, func() bool { return len(down.taken()) == 5 })
	for i, p := range down.taken() {
		if p.message["id"] != ids[i] {
			t.Fatalf("POST %d is %v, want %s: order lost", i, p.message["id"], ids[i])
		}
	}
	down.waitFor("all recorded", 10*time.Second, func() bool { return s.allFinished(t, ids, store.Delivered) })
	for _, id := range ids {
		for _, d := range s.hookDeliveries(t, id) {
			if d.Attempts > 1 {
				t.Errorf("delivery %d to %s: %d attempts used by an outage", d.ID, d.Recipient, d.Attempts)
			}
		}
	}
}

// 503 and 429 with Retry-After hold the webhook back for that long (not
// the 20 ms backoff), its later events wait in order, and no attempt is
// used up.
func TestRetryAfter(t *testing.T) {
	for _, code := range []int{http.StatusServiceUnavailable, http.StatusTooManyRequests} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			r := newReceiver(t, "")
			answer := func(w http.ResponseWriter) {
				w.Header().Set("Retry-After", "1")
				http.Error(w, "busy", code)
			}
			r.script = []func(http.ResponseWriter){answer, answer, answer, answer}
			s := start(t, webhook.Hook{Name: "crm", URL: r.url(), Events: []string{webhook.EventIn}})
			a := s.inbound(t, "first", "")
			b := s.inbound(t, "second", "")
			r.waitFor("both delivered", 20*time.Second, func() bool { return s.allFinished(t, []string{a, b}, store.Delivered) })
			got := r.taken()
			if len(got) != 6 {
				t.Fatalf("%d POSTs, want 4 refused then 2", len(got))
			}
			for i := 1; i < 5; i++ {
				if gap := got[i].at.Sub(got[i-1].at); gap < 900*time.Millisecond {
					t.Errorf("POST %d came %s after a Retry-After: 1", i, gap)
				}
			}
			for i, id := range []string{a, a, a, a, a, b} {
				if got[i].message["id"] != id {
					t.Errorf("POST %d is %v, want %s", i, got[i].message["id"], id)
				}
			}
			for _, id := range []string{a, b} {
				if d := s.hookDeliveries(t, id)[0]; d.Attempts > 1 {
					t.Errorf("%d attempts used", d.Attempts)
				}
			}
		})
	}
}

// A 4xx other than 408 and 429 fails the event at once with the answer in
// its history; the next event goes out (poison does not block).
func TestRefusedFails(t *testing.T) {
	r := newReceiver(t, "")
	r.script = []func(http.ResponseWriter){func(w http.ResponseWriter) { http.Error(w, "unknown field \"x\"", http.StatusUnprocessableEntity) }}
	s := start(t, webhook.Hook{Name: "crm", URL: r.url(), Events: []string{webhook.EventIn}})
	a := s.inbound(t, "first", "")
	b := s.inbound(t, "second", "")
	r.waitFor("settled", 10*time.Second, func() bool {
		return s.allFinished(t, []string{a}, store.Failed) && s.allFinished(t, []string{b}, store.Delivered)
	})
	d := s.hookDeliveries(t, a)[0]
	if d.Attempts != 1 || !strings.Contains(d.LastError, "422 Unprocessable Entity") || !strings.Contains(d.LastError, `unknown field`) {
		t.Errorf("failed delivery: %+v", d)
	}
	v, _ := s.router.Message(context.Background(), a)
	if last := v.Events[len(v.Events)-1]; last.State != store.Failed || !strings.Contains(last.Detail, "422") {
		t.Errorf("history ends with %+v", last)
	}
	if n := len(r.taken()); n != 2 {
		t.Errorf("%d POSTs, want 2 (a refused event is not tried again)", n)
	}
}

func webhookSign(secret, ts string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "."))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

func hmacEqual(a, b string) bool { return hmac.Equal([]byte(a), []byte(b)) }

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// A receiver that takes the POST but does not answer within the
// webhook's timeout is down, not the event bad: it is POSTed again, no
// attempt used up.
func TestTimeoutIsOutage(t *testing.T) {
	r := newReceiver(t, "")
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	r.script = []func(http.ResponseWriter){func(http.ResponseWriter) { <-release }}
	s := start(t, webhook.Hook{Name: "crm", URL: r.url(), Events: []string{webhook.EventIn}, Timeout: 200 * time.Millisecond})
	id := s.inbound(t, "slow", "")
	r.waitFor("delivered", 10*time.Second, func() bool { return s.allFinished(t, []string{id}, store.Delivered) })
	d := s.hookDeliveries(t, id)[0]
	v, _ := s.router.Message(context.Background(), id)
	timedOut := false
	for _, e := range v.Events {
		timedOut = timedOut || strings.Contains(e.Detail, "Timeout exceeded")
	}
	if d.Attempts != 1 || !timedOut {
		t.Errorf("%+v; history %+v", d, v.Events)
	}
}

// While the clock is not set (1970, before NTP), a receiver's 4xx may be
// its check of the timestamp: the event waits, uncounted, and goes once
// the clock is set.
func TestRefusedWhileClockUnset(t *testing.T) {
	fake := clock.NewFake(time.Date(1970, 1, 1, 0, 5, 0, 0, time.UTC))
	r := newReceiver(t, "k")
	var stale string
	r.script = []func(http.ResponseWriter){func(w http.ResponseWriter) {
		stale = "yes"
		fake.Set(time.Now())
		http.Error(w, "stale timestamp", http.StatusUnauthorized)
	}}
	s := startWith(t, store.Options{Clock: fake}, webhook.Hook{Name: "crm", URL: r.url(), Events: []string{webhook.EventIn}, Secret: "k"})
	id := s.inbound(t, "early", "")
	r.waitFor("delivered once the clock is set", 10*time.Second, func() bool {
		// The fake clock moves only when told: time passes.
		fake.Advance(20 * time.Millisecond)
		s.router.Wake(webhook.Name)
		return s.allFinished(t, []string{id}, store.Delivered)
	})
	got := r.taken()
	if len(got) != 2 || stale == "" {
		t.Fatalf("%d POSTs", len(got))
	}
	if d := s.hookDeliveries(t, id)[0]; d.Attempts != 1 {
		t.Errorf("%+v", d)
	}
}

// A webhook is an address: a send request to webhook:<name> is POSTed to
// it as a "message" event (from its sender), a route to it brings an
// inbound SMS as sms.in even when it subscribes to nothing, and a name no
// [[webhook]] has is refused before anything is stored.
func TestWebhookAddress(t *testing.T) {
	r := newReceiver(t, "s3cret")
	s := start(t, webhook.Hook{Name: "crm", URL: r.url(), Secret: "s3cret"})
	id, err := s.router.Submit(context.Background(), bridge.SendRequest{To: []string{"webhook:crm"}, Text: "stock low", Source: "mqtt",
		From: "mqtt:tablet-1"})
	if err != nil {
		t.Fatal(err)
	}
	r.waitFor("the send POSTed", 10*time.Second, func() bool { return len(r.taken()) == 1 })
	got := r.taken()[0]
	if got.event != webhook.EventMessage || got.message["id"] != id || got.message["text"] != "stock low" || got.message["from"] != "mqtt:tablet-1" {
		t.Errorf("POST %s %s", got.event, got.body)
	}
	if _, err := s.router.Submit(context.Background(), bridge.SendRequest{To: []string{"webhook:kobo"}, Text: "x", Source: "mqtt"}); err == nil ||
		!strings.Contains(err.Error(), `no [[webhook]] named "kobo"`) {
		t.Errorf("a send to an unknown webhook: %v", err)
	}
	s.router.Routes = []string{"webhook:crm"}
	in := s.inbound(t, "routed", "")
	r.waitFor("the routed SMS POSTed", 10*time.Second, func() bool { return len(r.taken()) == 2 })
	if got := r.taken()[1]; got.event != webhook.EventIn || got.message["id"] != in || got.message["text"] != "routed" {
		t.Errorf("routed POST %s %s", got.event, got.body)
	}
	if r.badSig != 0 {
		t.Errorf("%d POSTs with a bad signature", r.badSig)
	}
}

// Each webhook is a lane of its own: a receiver that takes its time over
// a POST holds back only its own events; another webhook gets all of its
// meanwhile, in order.
func TestSlowWebhookHoldsBackOnlyItself(t *testing.T) {
	slow, fast := newReceiver(t, ""), newReceiver(t, "")
	release := make(chan struct{})
	slow.script = []func(http.ResponseWriter){func(http.ResponseWriter) { <-release }}
	s := start(t,
		webhook.Hook{Name: "slow", URL: slow.url(), Events: []string{webhook.EventIn}, Timeout: time.Minute},
		webhook.Hook{Name: "fast", URL: fast.url(), Events: []string{webhook.EventIn}})
	var ids []string
	for _, text := range []string{"one", "two", "three"} {
		ids = append(ids, s.inbound(t, text, ""))
	}
	fast.waitFor("all three at the fast webhook while the slow one holds its first", 10*time.Second, func() bool { return len(fast.taken()) == 3 })
	for i, p := range fast.taken() {
		if p.message["id"] != ids[i] {
			t.Errorf("fast POST %d is %v, want %s", i, p.message["id"], ids[i])
		}
	}
	close(release)
	slow.waitFor("all three at the slow webhook once it answers", 10*time.Second, func() bool { return len(slow.taken()) == 3 })
	for i, p := range slow.taken() {
		if p.message["id"] != ids[i] {
			t.Errorf("slow POST %d is %v, want %s", i, p.message["id"], ids[i])
		}
	}
}

// A send to webhook:<name> scheduled for later does not hold the
// webhook's lane: the events that come after it go out now, in order,
// and the scheduled one goes out at its time.
func TestScheduledSendDoesNotHoldTheLane(t *testing.T) {
	r := newReceiver(t, "")
	s := start(t, webhook.Hook{Name: "crm", URL: r.url(), Events: []string{webhook.EventIn}})
	at := time.Now().Add(1500 * time.Millisecond)
	sched, err := s.router.Submit(context.Background(), bridge.SendRequest{To: []string{"webhook:crm"}, Text: "later", Source: "cli", NotBefore: at})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, text := range []string{"one", "two"} {
		ids = append(ids, s.inbound(t, text, ""))
	}
	r.waitFor("the two inbound SMS POSTed while the scheduled send waits", 10*time.Second, func() bool { return len(r.taken()) >= 2 })
	r.waitFor("the scheduled send POSTed at its time", 10*time.Second, func() bool { return len(r.taken()) == 3 })
	got := r.taken()
	for i, want := range append(ids, sched) {
		if got[i].message["id"] != want {
			t.Errorf("POST %d is %v, want %s", i, got[i].message["id"], want)
		}
	}
	if got[2].at.Before(at) {
		t.Errorf("the scheduled send went out at %v, before its time %v", got[2].at, at)
	}
}
