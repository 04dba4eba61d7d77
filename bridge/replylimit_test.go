package bridge_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outpost-sms/outpost/bridge"
	"github.com/outpost-sms/outpost/store"
)

// movable is a clock whose wall time and elapsed time the test moves
// apart.
type movable struct{ wall, elapsed atomic.Int64 }

func (c *movable) Now() time.Time         { return time.Now().Add(time.Duration(c.wall.Load())) }
func (c *movable) Elapsed() time.Duration { return time.Duration(c.elapsed.Load()) }

// syncBuffer is a log a test reads while the router writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// Two gateways whose routes answer every SMS would text each other
// forever: a sender gets at most ReplyLimit automatic replies an hour.
// A sender who texts 10 times gets 5; the route still delivers its
// copies of all 10; the history of each unanswered one says why, and
// the log says it once. The hour is elapsed time: the clock set two
// hours forward does not reset it, nor does a restart; an hour passing
// does.
func TestAutoReplyLimit(t *testing.T) {
	h, _ := newHub(t, &fake{})
	h.Add(&hook{})
	var log syncBuffer
	h.Log = slog.New(slog.NewTextHandler(&log, nil))
	clk := &movable{}
	clk.elapsed.Store(int64(10 * time.Hour))
	h.Store.SetClock(clk)
	h.Rules = []bridge.Route{{To: []string{"webhook:kobo"}, Reply: "Thanks, we got it."}}
	h.ReplyLimit = 5
	ctx := context.Background()
	var inVia func(*bridge.Router, string) bridge.MessageView
	in := func(from string) bridge.MessageView { t.Helper(); return inVia(h, from) }
	inVia = func(h *bridge.Router, from string) bridge.MessageView {
		t.Helper()
		text := "ping"
		m := &store.Message{Peer: from, FromAddr: "tel:" + from, Source: "sms", State: store.Complete, Text: &text}
		if err := h.Store.Update(ctx, func(tx *store.Tx) error { return h.StoreInbound(tx, m, "test") }); err != nil {
			t.Fatal(err)
		}
		v, err := h.Message(ctx, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	answered := func(v bridge.MessageView) bool {
		t.Helper()
		hasCopy, replied, refused := false, false, false
		for _, d := range v.Deliveries {
			hasCopy = hasCopy || d.Connector == "webhook" && d.Recipient == "kobo"
		}
		for _, e := range v.Events {
			replied = replied || e.State == "auto-reply"
			refused = refused || e.State == "no auto-reply" && strings.Contains(e.Detail, "tel:+15555550199 already got 5 auto-replies in the last hour (route_reply_limit)")
		}
		if !hasCopy {
			t.Errorf("message %s: no copy to webhook:kobo", v.ID)
		}
		if replied == refused {
			t.Errorf("message %s: replied %v, held back %v: %+v", v.ID, replied, refused, v.Events)
		}
		return replied
	}
	n := 0
	for range 10 {
		if answered(in("+15555550199")) {
			n++
		}
	}
	if n != 5 {
		t.Errorf("%d of 10 texts answered, want 5", n)
	}
	if got := strings.Count(log.String(), "auto-replies to a sender held back"); got != 1 {
		t.Errorf("the log says it %d times, want once:\n%s", got, log.String())
	}
	// A restart (another router on the store) counts the replies stored
	// in the last hour.
	again := bridge.New(h.Store, nil)
	again.Add(&fake{})
	again.Add(&hook{})
	again.Rules, again.ReplyLimit = h.Rules, h.ReplyLimit
	if answered(inVia(again, "+15555550199")) {
		t.Error("answered after a restart")
	}
	// Another sender has its own count.
	if !answered(in("+15555550198")) {
		t.Error("another sender's text is not answered")
	}
	// The wall clock jumps two hours forward: no reset.
	clk.wall.Store(int64(2 * time.Hour))
	if answered(in("+15555550199")) {
		t.Error("a clock set forward reset the count")
	}
	// An hour of elapsed time later: answered again.
	clk.elapsed.Add(int64(time.Hour + time.Minute))
	if !answered(in("+15555550199")) {
		t.Error("not answered an hour later")
	}
	var replies int
	h.Store.View(ctx, func(tx *store.Tx) error {
		ms, err := tx.Messages(store.Out, 100)
		replies = len(ms)
		return err
	})
	if replies != 7 {
		t.Errorf("%d replies stored, want 7", replies)
	}
}
