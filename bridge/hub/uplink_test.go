package hub

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost-sms/outpost/store"
)

// token is a paho.Token the test completes (or not).
type token struct {
	done chan struct{}
	err  error
}

func newToken(acked bool) *token {
	t := &token{done: make(chan struct{})}
	if acked {
		close(t.done)
	}
	return t
}

func (t *token) Wait() bool                     { <-t.done; return true }
func (t *token) WaitTimeout(time.Duration) bool { return isDone(t) }
func (t *token) Done() <-chan struct{}          { return t.done }
func (t *token) Error() error                   { return t.err }

// TestBlameSetsAsidePoison is the set-aside policy of issue 10, section
// 2, drop by drop: a drop strikes the oldest message not acknowledged and
// makes those not acknowledged go one at a time; two more drops running
// on the struck one, sent alone, each within refusedWithin of its publish,
// set it aside (kept, counted, the rest of the queue next). A drop on a
// message that was not struck, a late one, or a timeout (the link's
// doing), sets nothing aside.
func TestBlameSetsAsidePoison(t *testing.T) {
	ctx := context.Background()
	s, err := store.Open(ctx, filepath.Join(t.TempDir(), "outpost.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var ids []int64
	for i := range 6 {
		m := &store.HubMessage{Topic: fmt.Sprintf("t/%d", i), Payload: []byte("x"), QoS: 1}
		if err := s.Update(ctx, func(tx *store.Tx) error { return tx.EnqueueHub(m) }); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	u := NewUplink(Options{}, s, "", nil)
	eof := fmt.Errorf("%w: EOF", errLost)
	setAside := func() int64 {
		var st store.HubStats
		s.View(ctx, func(tx *store.Tx) (err error) { st, err = tx.HubQueueStats(); return })
		return st.SetAside
	}
	flight := func(acked int, ids ...int64) []inFlight {
		var f []inFlight
		for i, id := range ids {
			f = append(f, inFlight{id: id, tok: newToken(i < acked), at: time.Now()})
		}
		return f
	}

	// A drop with ids[0] acknowledged and ids[1..3] not: ids[1] struck,
	// ids[1..3] go alone.
	u.blame(ctx, flight(1, ids[0], ids[1], ids[2], ids[3]), eof)
	if u.struck != ids[1] || !u.suspect(ids[1]) || !u.suspect(ids[3]) || u.suspect(ids[4]) || setAside() != 0 {
		t.Fatalf("after the first drop: struck %d, suspects %d–%d, set aside %d", u.struck, u.suspectFrom, u.suspectTo, setAside())
	}
	// ids[1] alone, dropped, but by a timeout: the link, not the hub.
	u.blame(ctx, flight(0, ids[1]), fmt.Errorf("%w: write tcp: i/o timeout", errLost))
	if setAside() != 0 {
		t.Fatal("a write timeout set a message aside")
	}
	// ids[1] alone again, and the hub drops the connection: one strike.
	u.blame(ctx, flight(0, ids[1]), eof)
	if setAside() != 0 || u.struck != ids[1] || u.strikes != 1 {
		t.Fatalf("after one drop alone: set aside %d, struck %d, strikes %d", setAside(), u.struck, u.strikes)
	}
	// A drop long after it was sent alone is the link's doing: no strike.
	late := flight(0, ids[1])
	late[0].at = time.Now().Add(-refusedWithin - time.Second)
	u.blame(ctx, late, eof)
	if setAside() != 0 || u.strikes != 1 {
		t.Fatalf("a late drop: set aside %d, strikes %d", setAside(), u.strikes)
	}
	// Dropped again as it is sent alone: set aside.
	u.blame(ctx, flight(0, ids[1]), eof)
	if setAside() != 1 || u.struck != 0 {
		t.Fatalf("set aside %d, struck %d", setAside(), u.struck)
	}
	var batch []store.HubMessage
	s.View(ctx, func(tx *store.Tx) (err error) { batch, err = tx.HubBatch(0, 10); return })
	if len(batch) != 5 || batch[0].ID != ids[0] || batch[1].ID != ids[2] {
		t.Errorf("queue after the set-aside: %+v", batch)
	}
	// A drop on ids[2] alone that was not struck before only strikes it.
	u.blame(ctx, flight(0, ids[2]), eof)
	if setAside() != 1 || u.struck != ids[2] {
		t.Fatalf("set aside %d, struck %d", setAside(), u.struck)
	}
	// A drop with everything acknowledged blames nothing.
	u.struck = 0
	u.blame(ctx, flight(2, ids[2], ids[3]), eof)
	if u.struck != 0 {
		t.Errorf("struck %d with everything acknowledged", u.struck)
	}
}

// A hub away for long is tried less often: RetryMax bounds the backoff
// for LongOutage, RetryLong after it. The attempts are logged once a
// minute at most, and the link's state says since when it is down, not
// when it last tried.
func TestLongOutageBacksOff(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := store.Open(ctx, filepath.Join(t.TempDir(), "outpost.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// A "hub" that takes each connection and closes it at once.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var mu sync.Mutex
	var attempts []time.Time
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			attempts = append(attempts, time.Now())
			mu.Unlock()
			c.Close()
		}
	}()
	var logged bytes.Buffer
	var logMu sync.Mutex
	log := slog.New(slog.NewTextHandler(&lockedWriter{w: &logged, mu: &logMu}, nil))
	u := NewUplink(Options{URL: "tcp://" + ln.Addr().String(), RetryMin: time.Millisecond, RetryMax: 4 * time.Millisecond,
		LongOutage: 300 * time.Millisecond, RetryLong: 400 * time.Millisecond}, s, "", log)
	var states []LinkState
	u.report = func(st LinkState) { mu.Lock(); states = append(states, st); mu.Unlock() }
	// The waits are checked, not the wall clock between connections: on a
	// loaded 2-core CI machine with -race a session can take far longer
	// than the waits, and a timing window flakes.
	type wait struct {
		at         time.Duration
		backoff, d time.Duration
	}
	var waits []wait
	start := time.Now()
	u.waiting = func(b, d time.Duration) {
		mu.Lock()
		waits = append(waits, wait{time.Since(start), b, d})
		mu.Unlock()
	}
	done := make(chan struct{})
	go func() { u.Run(ctx); close(done) }()
	// The outage lasts until two waits at the long bound have been drawn.
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		long := 0
		for _, w := range waits {
			if w.backoff == 400*time.Millisecond {
				long++
			}
		}
		mu.Unlock()
		if long >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no two waits at RetryLong (400ms) after 20 s: %+v", waits)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	early := 0
	for i, w := range waits {
		if w.d < w.backoff/2 || w.d > w.backoff {
			t.Errorf("wait %d: %v drawn from a backoff of %v (want within its upper half)", i, w.d, w.backoff)
		}
		if w.backoff > 400*time.Millisecond {
			t.Errorf("wait %d: backoff %v over RetryLong", i, w.backoff)
		}
		// Until LongOutage has passed the bound is RetryMax.
		if w.at < 300*time.Millisecond {
			early++
			if w.backoff > 4*time.Millisecond {
				t.Errorf("wait %d at %v: backoff %v over RetryMax before LongOutage", i, w.at, w.backoff)
			}
		}
		if i > 0 && w.backoff < waits[i-1].backoff {
			t.Errorf("wait %d: backoff fell from %v to %v while the hub stayed down", i, waits[i-1].backoff, w.backoff)
		}
	}
	if early < 10 {
		t.Errorf("%d attempts in the first 300 ms, want many (RetryMax is 4ms)", early)
	}
	if len(attempts) > len(waits)+1 {
		t.Errorf("%d connections for %d waits: an attempt without its wait", len(attempts), len(waits))
	}
	logMu.Lock()
	n := strings.Count(logged.String(), "hub link down; retrying")
	logMu.Unlock()
	if n != 1 {
		t.Errorf("%d log lines for %d attempts, want 1 (once a minute)", n, len(attempts))
	}
	for _, st := range states[1:] {
		if st.Connected || !st.Since.Equal(states[0].Since) {
			t.Fatalf("link states %+v: since moved while it stayed down", states)
		}
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}
