package bridge_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outpost-sms/outpost/bridge"
	"github.com/outpost-sms/outpost/store"
)

// TestPruneBench is issue 12's retention benchmark (scripts/bench.sh):
// OUTPOST_PRUNE_BENCH=N old finished messages (each with a delivery, its
// sent part and three history entries, made with one INSERT … SELECT
// from a recursive CTE) are pruned by the retention pruner while sends
// (a message and its delivery committed, as a send request is) go on
// every 10 ms. It reports the longest time a send waited for its commit
// and fails above 100 ms; beside it, the waits of 300 sends before the
// pruner started (what the machine gives anyway), the prune rate, and the
// pruner's writes (OUTPOST_PRUNE_BATCH sets their rows).
func TestPruneBench(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("OUTPOST_PRUNE_BENCH"))
	if n <= 0 {
		t.Skip("set OUTPOST_PRUNE_BENCH=1000000 (the number of old messages) to run")
	}
	ctx := context.Background()
	s, err := store.Open(ctx, filepath.Join(t.TempDir(), "outpost.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	built := time.Now()
	old := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	for _, q := range []string{
		`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < ?2)
		 INSERT INTO messages (id, direction, peer, text, created_at) SELECT printf('old-%09d', i), 'out', '+15550000000', 'an old message', ?1 + i FROM n`,
		`INSERT INTO deliveries (message_id, connector, recipient, state, attempts, updated_at) SELECT id, 'sms', peer, 'delivered', 1, created_at FROM messages`,
		`INSERT INTO sent_parts (delivery_id, seq, total, modem, mr, recipient, state, sent_at) SELECT id, 1, 1, 'sim0', id % 256, recipient, 'delivered', updated_at FROM deliveries`,
		`INSERT INTO events (message_id, delivery_id, at, state) SELECT message_id, id, updated_at, 'queued' FROM deliveries`,
		`INSERT INTO events (message_id, delivery_id, at, state) SELECT message_id, id, updated_at, 'sending' FROM deliveries`,
		`INSERT INTO events (message_id, delivery_id, at, state) SELECT message_id, id, updated_at, 'delivered' FROM deliveries`,
	} {
		if _, err := s.DB().ExecContext(ctx, q, old, n); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("built %d old messages in %s", n, time.Since(built).Round(time.Millisecond))

	// Sends every 10 ms: 300 before the pruner starts (what a send
	// waits on this machine anyway), then while it runs.
	stop := make(chan struct{})
	idleDone := make(chan struct{})
	var pruning atomic.Bool
	var idle, waits []time.Duration
	var worst time.Time // when the longest wait began
	var worstWait time.Duration
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			text := "hello"
			during := pruning.Load()
			t0 := time.Now()
			err := s.Update(ctx, func(tx *store.Tx) error {
				m := &store.Message{Direction: store.Out, Peer: fmt.Sprintf("+1555%07d", i), Text: &text, Source: "http", Channel: "http", Kind: store.KindText}
				if err := tx.InsertMessage(m); err != nil {
					return err
				}
				return tx.InsertDelivery(&store.Delivery{MessageID: m.ID, Connector: "sms", Recipient: m.Peer}, "")
			})
			w := time.Since(t0)
			if !during {
				if idle = append(idle, w); len(idle) == 300 {
					close(idleDone)
				}
			} else if waits = append(waits, w); w > worstWait {
				worst, worstWait = t0, w
			}
			if err != nil {
				t.Error(err)
				return
			}
		}
	}()
	<-idleDone
	pruning.Store(true)
	p := &bridge.Pruner{Store: s, Messages: 365 * 24 * time.Hour, Events: 365 * 24 * time.Hour}
	if b, _ := strconv.Atoi(os.Getenv("OUTPOST_PRUNE_BATCH")); b > 0 {
		p.Batch = b // the default otherwise
	}
	t0 := time.Now()
	msgs, evs, err := p.Once(ctx)
	took := time.Since(t0)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if msgs != int64(n) {
		t.Errorf("pruned %d messages, want %d", msgs, n)
	}
	slices.Sort(waits)
	slices.Sort(idle)
	q := func(waits []time.Duration, f float64) time.Duration {
		return waits[int(f*float64(len(waits)-1))].Round(100 * time.Microsecond)
	}
	st := p.Stats()
	fmt.Printf("prune: %d old messages (and %d history entries alone) pruned in %s, %.0f messages/s, in %d writes of at most %d (the longest held the committer %s)\n",
		msgs, evs, took.Round(time.Millisecond), float64(msgs)/took.Seconds(), st.Writes, p.Batch, st.LongestWrite)
	fmt.Printf("prune: %d sends before: commit wait p50 %s, p99 %s, max %s\n",
		len(idle), q(idle, 0.5), q(idle, 0.99), idle[len(idle)-1].Round(100*time.Microsecond))
	over := len(waits) - sort.Search(len(waits), func(i int) bool { return waits[i] > 100*time.Millisecond })
	fmt.Printf("prune: %d sends meanwhile: commit wait p50 %s, p99 %s, max %s, %d over 100ms (target: max under 100ms)\n",
		len(waits), q(waits, 0.5), q(waits, 0.99), waits[len(waits)-1].Round(100*time.Microsecond), over)
	if ck := s.Files().Checkpoint; !ck.At.IsZero() {
		fmt.Printf("prune: the longest wait began %s after the start; the store's periodic WAL checkpoint (on the committer) ran at %s\n",
			worst.Sub(t0).Round(time.Millisecond), ck.At.Sub(t0).Round(time.Millisecond))
	}
	if waits[len(waits)-1] > 100*time.Millisecond {
		t.Errorf("a send waited %s behind the pruning (target 100ms)", waits[len(waits)-1])
	}
}
