package bridge_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/outpost-sms/outpost/bridge"
	"github.com/outpost-sms/outpost/store"
)

func TestSendModemField(t *testing.T) {
	s, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "o.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r := bridge.New(s, nil)
	r.Add(&fake{})
	r.ModemIDs, r.ReceiveOnly = []string{"m1", "m2", "m3"}, map[string]bool{"m3": true}
	ctx := context.Background()
	req, _, err := bridge.ParseSend([]byte(`{"id": "a", "to": "+15555550100", "text": "hi", "modem": "m2"}`), "http")
	if err != nil {
		t.Fatal(err)
	}
	id, err := r.Submit(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := r.Message(ctx, id); v.Modem != "m2" || !hasDetail(v, "accepted via http (through modem m2)") {
		t.Errorf("stored modem %q; history %+v", v.Modem, v.Events)
	}
	// The same id through another modem is another request.
	req.Modem = "m1"
	if _, err := r.Submit(ctx, req); !errors.Is(err, bridge.ErrConflict) {
		t.Errorf("same id, other modem: %v", err)
	}
	for modem, want := range map[string]string{
		"m9": `"modem" "m9" is not a configured modem (m1, m2, m3)`,
		"m3": `"modem" "m3" is receive-only (send = false): it sends nothing`,
	} {
		_, err := r.Submit(ctx, bridge.SendRequest{To: []string{"+15555550100"}, Text: "x", Source: "cli", Modem: modem})
		if !errors.Is(err, bridge.ErrInvalid) || err.Error() != "invalid request: "+want {
			t.Errorf("modem %s: %v", modem, err)
		}
	}
}

func hasDetail(v bridge.MessageView, detail string) bool {
	for _, e := range v.Events {
		if e.Detail == detail {
			return true
		}
	}
	return false
}

// parallel is a connector that delivers several at once: each Deliver
// waits until two are in, or a while.
type parallel struct {
	fake
	mu     sync.Mutex
	in     int
	most   int
	byTo   map[string][]string
	inside chan struct{}
}

func (p *parallel) Parallel() int { return 4 }

func (p *parallel) Deliver(ctx context.Context, m store.Message, d store.Delivery) (bridge.Outcome, error) {
	p.mu.Lock()
	p.in++
	p.most = max(p.most, p.in)
	p.byTo[d.Recipient] = append(p.byTo[d.Recipient], *m.Text)
	p.mu.Unlock()
	select {
	case p.inside <- struct{}{}:
	case <-time.After(200 * time.Millisecond):
	}
	p.mu.Lock()
	p.in--
	p.mu.Unlock()
	return bridge.Outcome{State: store.Sent}, nil
}

// TestParallelDelivery: a Parallel connector gets deliveries to several
// recipients at once, and those to one recipient in order.
func TestParallelDelivery(t *testing.T) {
	s, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "o.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r := bridge.New(s, nil)
	p := &parallel{byTo: map[string][]string{}, inside: make(chan struct{})}
	r.Add(p)
	ctx, cancel := context.WithCancel(context.Background())
	var ids []string
	for _, text := range []string{"a1", "b1", "a2", "c1", "a3", "b2"} {
		to := map[byte]string{'a': "+15555550101", 'b': "+15555550102", 'c': "+15555550103"}[text[0]]
		id, err := r.Submit(ctx, bridge.SendRequest{To: []string{to}, Text: text, Source: "cli"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	deadline := time.Now().Add(20 * time.Second)
	for _, id := range ids {
		for {
			v, _ := r.Message(ctx, id)
			if v.State == store.Sent {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %s", id, v.State)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	cancel()
	<-done
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.most < 2 {
		t.Errorf("at most %d deliveries at once, want several", p.most)
	}
	if got := p.byTo["+15555550101"]; len(got) != 3 || got[0] != "a1" || got[1] != "a2" || got[2] != "a3" {
		t.Errorf("to one recipient: %v, want in order", got)
	}
}

// TestReplyModem: an answer (in_reply_to, or by mail or chat to a number
// that texted) is to go out through the modem the SMS came in on; a
// plain send is not.
func TestReplyModem(t *testing.T) {
	s, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "o.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r := bridge.New(s, nil)
	r.Add(&fake{})
	r.ModemIDs = []string{"m1", "m2"}
	ctx := context.Background()
	text := "hello"
	in := &store.Message{Peer: "+15555550177", Modem: "m2", Text: &text, Source: "sms", State: store.Complete, FromAddr: "tel:+15555550177"}
	if err := s.Update(ctx, func(tx *store.Tx) error { return r.StoreInbound(tx, in, "test") }); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		req  bridge.SendRequest
		want string
	}{
		{bridge.SendRequest{Source: "cli", InReplyTo: in.ID}, "m2"},
		{bridge.SendRequest{Source: "email"}, "m2"},
		{bridge.SendRequest{Source: "xmpp"}, "m2"},
		{bridge.SendRequest{Source: "cli"}, ""},
		{bridge.SendRequest{Source: "email", Modem: "m1"}, ""},
	} {
		tc.req.To, tc.req.Text = []string{"+15555550177"}, "answer"
		id, err := r.Submit(ctx, tc.req)
		if err != nil {
			t.Fatal(err)
		}
		var got string
		s.View(ctx, func(tx *store.Tx) (err error) { got, err = tx.ReplyModem(id); return })
		if got != tc.want {
			t.Errorf("%+v: reply modem %q, want %q", tc.req, got, tc.want)
		}
	}
}
