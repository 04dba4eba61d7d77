package bridge_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost-sms/outpost/bridge"
	"github.com/outpost-sms/outpost/store"
)

// fake is a connector named "sms" whose Deliver answers from a script.
type fake struct {
	mu      sync.Mutex
	results []error // one per call; nil once exhausted
	calls   int
	ready   chan struct{} // when set, WaitReady blocks until it is closed
	texts   []string      // the text of each call, in order
	at      []time.Time   // and when it was made
	// entered, when set, gets a value as each Deliver starts, which then
	// waits for release.
	entered chan struct{}
	release chan struct{}
}

func (f *fake) Name() string { return "sms" }

func (f *fake) Run(ctx context.Context, _ *bridge.Router) error { <-ctx.Done(); return nil }

func (f *fake) Deliver(ctx context.Context, m store.Message, d store.Delivery) (bridge.Outcome, error) {
	if f.entered != nil {
		f.entered <- struct{}{}
		<-f.release
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if m.Text != nil {
		f.texts = append(f.texts, *m.Text)
	}
	f.at = append(f.at, time.Now())
	if len(f.results) > 0 {
		err := f.results[0]
		f.results = f.results[1:]
		if err != nil {
			return bridge.Outcome{}, err
		}
	}
	return bridge.Outcome{State: store.Sent, Detail: "sent to " + d.Recipient}, nil
}

func (f *fake) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// waiting wraps fake with bridge.Waiter.
type waiting struct{ *fake }

func (w waiting) WaitReady(ctx context.Context) error {
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func newHub(t *testing.T, c bridge.Connector) (*bridge.Router, func()) {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "outpost.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := bridge.New(st, nil)
	h.RetryMin, h.RetryMax = 10*time.Millisecond, 40*time.Millisecond
	h.Add(c)
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	start := func() {
		wg.Add(1)
		go func() { defer wg.Done(); h.Run(ctx) }()
	}
	t.Cleanup(func() { cancel(); wg.Wait(); st.Close() })
	return h, start
}

func submit(t *testing.T, h *bridge.Router, text string) string {
	t.Helper()
	return submitReq(t, h, bridge.SendRequest{Text: text})
}

// submitReq submits req from "test", to the echo number unless it names
// recipients.
func submitReq(t *testing.T, h *bridge.Router, req bridge.SendRequest) string {
	t.Helper()
	if req.To == nil {
		req.To = []string{"+15555550100"}
	}
	req.Source = "test"
	id, err := h.Submit(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func waitState(t *testing.T, h *bridge.Router, id, state string) bridge.MessageView {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		v, err := h.Message(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if v.State == state {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("message %s is %q, want %q; events %+v", id, v.State, state, v.Events)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func details(v bridge.MessageView) string {
	var b strings.Builder
	for _, e := range v.Events {
		b.WriteString(e.State + ": " + e.Detail + "\n")
	}
	return b.String()
}

func TestRetriesWithBackoffThenSent(t *testing.T) {
	f := &fake{results: []error{errors.New("modem busy"), errors.New("modem busy")}}
	h, start := newHub(t, f)
	start()
	id := submit(t, h, "hello")
	v := waitState(t, h, id, store.Sent)
	if v.Deliveries[0].Attempts != 3 || f.Calls() != 3 {
		t.Errorf("attempts %d, calls %d; want 3", v.Deliveries[0].Attempts, f.Calls())
	}
	hist := details(v)
	for _, want := range []string{"queued: accepted via test", "attempt 1 failed, retry in", "modem busy", "sent: sent to +15555550100"} {
		if !strings.Contains(hist, want) {
			t.Errorf("history lacks %q:\n%s", want, hist)
		}
	}
}

func TestPermanentErrorFailsAtOnce(t *testing.T) {
	f := &fake{results: []error{bridge.Permanent(errors.New("+CMS ERROR: 21 (rejected)"))}}
	h, start := newHub(t, f)
	start()
	v := waitState(t, h, submit(t, h, "hello"), store.Failed)
	if f.Calls() != 1 || v.Deliveries[0].LastError != "+CMS ERROR: 21 (rejected)" {
		t.Errorf("calls %d, delivery %+v", f.Calls(), v.Deliveries[0])
	}
}

func TestGivesUpAfterMaxAttempts(t *testing.T) {
	boom := errors.New("no answer")
	f := &fake{results: []error{boom, boom, boom, boom, boom}}
	h, start := newHub(t, f)
	h.MaxAttempts = 3
	start()
	v := waitState(t, h, submit(t, h, "hello"), store.Failed)
	if f.Calls() != 3 || !strings.Contains(details(v), "gave up after 3 attempts: no answer") {
		t.Errorf("calls %d, history:\n%s", f.Calls(), details(v))
	}
}

// A connector that cannot deliver at all (no modem plugged in) holds its
// queue without using up attempts.
func TestWaiterHoldsTheQueue(t *testing.T) {
	f := &fake{ready: make(chan struct{})}
	h, start := newHub(t, waiting{f})
	start()
	id := submit(t, h, "hello")
	time.Sleep(100 * time.Millisecond)
	v := waitState(t, h, id, store.Queued)
	if f.Calls() != 0 || v.Deliveries[0].Attempts != 0 {
		t.Fatalf("delivered while not ready: calls %d, attempts %d", f.Calls(), v.Deliveries[0].Attempts)
	}
	close(f.ready)
	v = waitState(t, h, id, store.Sent)
	if v.Deliveries[0].Attempts != 1 {
		t.Errorf("attempts %d, want 1", v.Deliveries[0].Attempts)
	}
}

func TestSubmitRejectsBadRequests(t *testing.T) {
	h, _ := newHub(t, &fake{})
	ctx := context.Background()
	for _, c := range []struct {
		req  bridge.SendRequest
		want string
	}{
		{bridge.SendRequest{Text: "x"}, `"to" is missing`},
		{bridge.SendRequest{To: []string{"+15555550100"}}, `"text" is empty`},
		{bridge.SendRequest{To: []string{"+15555550100"}, Text: "x", ID: strings.Repeat("a", 65)}, "1–64 characters"},
	} {
		_, err := h.Submit(ctx, c.req)
		if !errors.Is(err, bridge.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want ErrInvalid naming %q", c.req, err, c.want)
		}
	}
	// A request repeated with its own id (a client retrying after a lost
	// reply) is stored once.
	req := bridge.SendRequest{ID: "client-42", To: []string{"+15555550100", "+15555550100"}, Text: "x", Source: "test"}
	for range 2 {
		id, err := h.Submit(ctx, req)
		if err != nil || id != "client-42" {
			t.Fatalf("submit: %q %v", id, err)
		}
	}
	v, err := h.Message(ctx, "client-42")
	if err != nil || len(v.Deliveries) != 1 {
		t.Fatalf("deliveries %+v, %v (want one: duplicates in \"to\" are merged)", v.Deliveries, err)
	}
}

// TestSubmitChecksIDs: a client's id names its status topic
// (sms/status/<id>), so only [A-Za-z0-9._:-]{1,64} is taken; "p#1" made a
// topic the hub refuses.
func TestSubmitChecksIDs(t *testing.T) {
	h, _ := newHub(t, &fake{})
	ctx := context.Background()
	for _, id := range []string{"p#1", "p+1", "a/b", "nul\x00", "bad\xff", "ü", "sp ace", "$SYS"} {
		_, err := h.Submit(ctx, bridge.SendRequest{ID: id, To: []string{"+15555550100"}, Text: "x", Source: "test"})
		if !errors.Is(err, bridge.ErrInvalid) || !strings.Contains(err.Error(), `"id"`) {
			t.Errorf("id %q: %v, want ErrInvalid naming \"id\"", id, err)
		}
		if _, err := h.Message(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("id %q stored: %v", id, err)
		}
	}
	for _, id := range []string{"a", "A.b_c:d-9", strings.Repeat("z", 64), store.NewID()} {
		if got := submitReq(t, h, bridge.SendRequest{ID: id, Text: "x"}); got != id {
			t.Errorf("id %q: got %q", id, got)
		}
	}
}

// TestSubmitIDConflicts: the same id with the same request is a retry
// (the id back); with another request, or an inbound message's id, it is
// ErrConflict with the reason (it used to fail to store, for ever).
func TestSubmitIDConflicts(t *testing.T) {
	h, _ := newHub(t, &fake{})
	ctx := context.Background()
	in := &store.Message{ID: "inbound-1", Peer: "+15555550100", Text: new(string)}
	if err := h.Store.Update(ctx, func(tx *store.Tx) error { return h.StoreInbound(tx, in, "test") }); err != nil {
		t.Fatal(err)
	}
	base := bridge.SendRequest{ID: "c-1", To: []string{"+15555550100"}, Text: "hello", Report: true, Source: "test",
		Expires: time.Now().Add(time.Hour)}
	if id, err := h.Submit(ctx, base); err != nil || id != "c-1" {
		t.Fatalf("submit: %q %v", id, err)
	}
	retry := base
	retry.Source = "http" // the same request through another API
	if id, err := h.Submit(ctx, retry); err != nil || id != "c-1" {
		t.Fatalf("retry: %q %v", id, err)
	}
	for name, c := range map[string]struct {
		req  func(r *bridge.SendRequest)
		want string
	}{
		"inbound":  {func(r *bridge.SendRequest) { r.ID = "inbound-1" }, "an inbound message"},
		"text":     {func(r *bridge.SendRequest) { r.Text = "other" }, "another text"},
		"to":       {func(r *bridge.SendRequest) { r.To = []string{"+15555550101"} }, "a message to +15555550100"},
		"priority": {func(r *bridge.SendRequest) { r.Priority = 5 }, "other options"},
		"expires":  {func(r *bridge.SendRequest) { r.Expires = r.Expires.Add(time.Minute) }, `another "expires"`},
	} {
		r := base
		c.req(&r)
		_, err := h.Submit(ctx, r)
		if !errors.Is(err, bridge.ErrConflict) || !errors.Is(err, bridge.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want ErrConflict naming %q", name, err, c.want)
		}
	}
	v, err := h.Message(ctx, "c-1")
	if err != nil || len(v.Deliveries) != 1 || *v.Text != "hello" {
		t.Errorf("c-1 after the conflicts: %+v %v", v, err)
	}
}

// A delivery left in "sending" by a crash is queued again at start, with
// the reason in its history.
func TestRunRecoversInterruptedDeliveries(t *testing.T) {
	f := &fake{}
	h, start := newHub(t, f)
	id := submit(t, h, "hello")
	err := h.Store.Update(context.Background(), func(tx *store.Tx) error {
		ds, err := tx.ClaimDue("sms", 10)
		if len(ds) != 1 {
			t.Fatalf("claimed %d", len(ds))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	start()
	v := waitState(t, h, id, store.Sent)
	if !strings.Contains(details(v), "daemon restarted during delivery") || v.Deliveries[0].Attempts != 2 {
		t.Errorf("attempts %d, history:\n%s", v.Deliveries[0].Attempts, details(v))
	}
}

// TestDeliveryErrorsRedacted: a destination's credentials quoted in a
// delivery error (Go's HTTP client quotes the whole URL) are masked in
// the message's history and last error (issue 10, section 7).
func TestDeliveryErrorsRedacted(t *testing.T) {
	f := &fake{results: []error{bridge.Permanent(errors.New(`Post "https://kobo:s3cret@forms.example.org/submission?token=abc123&form=x": 401 Unauthorized`))}}
	h, start := newHub(t, f)
	start()
	id := submit(t, h, "secret path")
	v := waitState(t, h, id, store.Failed)
	all := details(v) + v.Deliveries[0].LastError
	if strings.Contains(all, "s3cret") || strings.Contains(all, "abc123") {
		t.Fatalf("credentials in the history: %s", all)
	}
	if !strings.Contains(all, "https://kobo:xxxxx@forms.example.org/submission?form=x&token=xxxxx") {
		t.Fatalf("the URL is not shown redacted: %s", all)
	}
	if got := bridge.RedactURLs("tcp://hub.example.org:1883 and ssl://u:p@h:8883?x=1"); got != "tcp://hub.example.org:1883 and ssl://u:xxxxx@h:8883?x=1" {
		t.Errorf("RedactURLs: %s", got)
	}
}

// TestSubmitBoundsRecipients: one request reaches at most
// bridge.MaxRecipients numbers, counted after groups are expanded and
// repeats merged (20,000 used to be queued from one request).
func TestSubmitBoundsRecipients(t *testing.T) {
	h, _ := newHub(t, &fake{})
	ctx := context.Background()
	nums := func(from, n int) []string {
		var out []string
		for i := from; i < from+n; i++ {
			out = append(out, fmt.Sprintf("+2547%08d", i))
		}
		return out
	}
	h.Groups = map[string][]string{"big": nums(0, 6000)}
	over := append([]string{"group:big"}, nums(6000, bridge.MaxRecipients-6000+1)...)
	_, err := h.Submit(ctx, bridge.SendRequest{To: over, Text: "x", Source: "test"})
	want := fmt.Sprintf("%d recipients after expanding groups: at most %d in one request", bridge.MaxRecipients+1, bridge.MaxRecipients)
	if !errors.Is(err, bridge.ErrInvalid) || !strings.Contains(err.Error(), want) {
		t.Fatalf("%d recipients: %v, want ErrInvalid naming %q", bridge.MaxRecipients+1, err, want)
	}
	if q, err := h.QueueDepths(ctx); err != nil || len(q) != 0 {
		t.Fatalf("queued after the refusal: %v %v", q, err)
	}
	// Exactly the bound, with numbers repeated between the group and the
	// list (they count once), is taken.
	at := append([]string{"group:big"}, nums(3000, bridge.MaxRecipients-3000)...)
	id, err := h.Submit(ctx, bridge.SendRequest{To: at, Text: "x", Source: "test"})
	if err != nil {
		t.Fatal(err)
	}
	v, err := h.Message(ctx, id)
	if err != nil || len(v.Deliveries) != bridge.MaxRecipients {
		t.Fatalf("%d deliveries, %v; want %d", len(v.Deliveries), err, bridge.MaxRecipients)
	}
}

// TestSubmitRefusesControlCharacters: a C0 control character other than
// line feed, carriage return and tab, or DEL, in "text" is refused with
// its position and code point (ESC went out as a raw GSM escape: "a\x1bb"
// came back as "ab"); tab, which GSM cannot write, is taken (the encoder
// sends UCS-2).
func TestSubmitRefusesControlCharacters(t *testing.T) {
	h, _ := newHub(t, &fake{})
	ctx := context.Background()
	for text, want := range map[string]string{
		"a\x1bb":      `"text": character 2 is U+001B, a control character`,
		"\x00":        `"text": character 1 is U+0000, a control character`,
		"héllo\x07!":  `"text": character 6 is U+0007, a control character`,
		"tail\x7f":    `"text": character 5 is U+007F, a control character`,
		"a\u009b31m":  `"text": character 2 is U+009B, a control character`,
		"\u0080":      `"text": character 1 is U+0080, a control character`,
		"ok\r\n\x0c.": `"text": character 5 is U+000C, a control character`,
	} {
		_, err := h.Submit(ctx, bridge.SendRequest{To: []string{"+15555550100"}, Text: text, Source: "test"})
		if !errors.Is(err, bridge.ErrInvalid) || !strings.Contains(err.Error(), want) ||
			!strings.Contains(err.Error(), `only line feed (\n), carriage return (\r) and tab (\t) are allowed`) {
			t.Errorf("%q: %v, want ErrInvalid naming %q", text, err, want)
		}
	}
	if q, err := h.QueueDepths(ctx); err != nil || len(q) != 0 {
		t.Fatalf("queued after the refusals: %v %v", q, err)
	}
	for _, text := range []string{"col1\tcol2", "line 1\r\nline 2\n", "€ ünïcödé 📦"} {
		if _, err := h.Submit(ctx, bridge.SendRequest{To: []string{"+15555550100"}, Text: text, Source: "test"}); err != nil {
			t.Errorf("%q: %v", text, err)
		}
	}
}

// OnInboundTx functions run in the transaction that stores an inbound
// message: what they write commits with it, and an error stores nothing.
func TestOnInboundTx(t *testing.T) {
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "outpost.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r := bridge.New(st, nil)
	var seen []string
	r.OnInboundTx(func(tx *store.Tx, m *store.Message) error {
		seen = append(seen, m.Peer)
		if m.Peer == "+15555550199" {
			return errors.New("refused by a hook")
		}
		return tx.AppendEvent(m.ID, 0, "hooked", "by the test")
	})
	text := "hi"
	for _, peer := range []string{"+15555550100", "+15555550199"} {
		m := &store.Message{Peer: peer, Text: &text}
		err := st.Update(context.Background(), func(tx *store.Tx) error { return r.StoreInbound(tx, m, "test") })
		if (err != nil) != (peer == "+15555550199") {
			t.Fatalf("%s: %v", peer, err)
		}
	}
	if len(seen) != 2 {
		t.Fatalf("hook saw %v", seen)
	}
	inbox, err := r.Inbox(context.Background(), 10)
	if err != nil || len(inbox) != 1 || inbox[0].Peer != "+15555550100" {
		t.Fatalf("inbox %+v %v: the message whose hook failed must not be stored", inbox, err)
	}
	v, _ := r.Message(context.Background(), inbox[0].ID)
	found := false
	for _, e := range v.Events {
		found = found || e.State == "hooked"
	}
	if !found {
		t.Fatalf("history %+v lacks the hook's event", v.Events)
	}
}
