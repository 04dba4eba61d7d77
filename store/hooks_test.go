package store

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/outpost-sms/outpost/store/clock"
)

// hookLog records what the hooks were told.
type hookLog struct {
	mu       sync.Mutex
	commits  int
	writes   int
	messages map[string]int // direction/channel
	states   map[string]int // connector/state
	ages     []time.Duration
	parts    map[string]int
}

func (l *hookLog) hooks() Hooks {
	l.messages, l.states, l.parts = map[string]int{}, map[string]int{}, map[string]int{}
	return Hooks{
		Commit: func(took time.Duration, writes int) {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.commits++
			l.writes += writes
		},
		Message: func(dir, ch string) { l.mu.Lock(); l.messages[dir+"/"+ch]++; l.mu.Unlock() },
		Delivery: func(c, st string, age time.Duration) {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.states[c+"/"+st]++
			if age >= 0 {
				l.ages = append(l.ages, age)
			}
		},
		SentPart: func(modem string) { l.mu.Lock(); l.parts[modem]++; l.mu.Unlock() },
	}
}

func TestHooksCountWhatCommits(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "o.db"), Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var l hookLog
	s.SetHooks(l.hooks())
	ctx := context.Background()
	var did int64
	if err := s.Update(ctx, func(tx *Tx) error {
		m := &Message{Direction: Out, Peer: "+15555550100", Text: text("hi"), Source: "http", Channel: "http"}
		if err := tx.InsertMessage(m); err != nil {
			return err
		}
		d := &Delivery{MessageID: m.ID, Connector: "sms", Recipient: "+15555550100"}
		if err := tx.InsertDelivery(d, "accepted"); err != nil {
			return err
		}
		did = d.ID
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// A write that fails is rolled back: none of it is counted.
	boom := fmt.Errorf("boom")
	if err := s.Update(ctx, func(tx *Tx) error {
		if err := tx.InsertMessage(&Message{Direction: In, Peer: "+1", Text: text("x"), Channel: "sms"}); err != nil {
			return err
		}
		return boom
	}); err != boom {
		t.Fatalf("want boom, got %v", err)
	}
	clk.Advance(90 * time.Second)
	if err := s.Update(ctx, func(tx *Tx) error {
		if _, err := tx.SetDeliveryState(did, Transition{State: Sending, Attempted: true}); err != nil {
			return err
		}
		for seq := 1; seq <= 2; seq++ {
			if err := tx.RecordSentPart(SentPart{DeliveryID: did, Seq: seq, Total: 2, Modem: "m1", MR: seq, Recipient: "+15555550100"}); err != nil {
				return err
			}
		}
		_, err := tx.SetDeliveryState(did, Transition{State: Sent})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.messages["out/http"] != 1 || len(l.messages) != 1 {
		t.Errorf("messages: %v, want out/http 1 only", l.messages)
	}
	if l.states["sms/queued"] != 1 || l.states["sms/sending"] != 1 || l.states["sms/sent"] != 1 || len(l.states) != 3 {
		t.Errorf("states: %v", l.states)
	}
	if len(l.ages) != 1 || l.ages[0] != 90*time.Second {
		t.Errorf("ages %v, want [1m30s] (the store's clock)", l.ages)
	}
	if l.parts["m1"] != 2 {
		t.Errorf("parts %v, want m1: 2", l.parts)
	}
	if l.commits < 2 || l.writes != 3 {
		t.Errorf("%d commits of %d writes, want at least 2 of 3", l.commits, l.writes)
	}
}

func TestBacklog(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "o.db"), Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	add := func(connector, state string) {
		t.Helper()
		if err := s.Update(ctx, func(tx *Tx) error {
			m := &Message{Direction: Out, Peer: "+1", Text: text("x"), Channel: "cli"}
			if err := tx.InsertMessage(m); err != nil {
				return err
			}
			return tx.InsertDelivery(&Delivery{MessageID: m.ID, Connector: connector, Recipient: "+1", State: state}, "")
		}); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Minute)
	}
	first := clk.Now()
	add("sms", Queued)
	add("sms", Delivered)
	add("sms", Queued)
	add("mqtt", Sent)
	add("webhook", Failed)
	var got []Backlog
	if err := s.View(ctx, func(tx *Tx) (err error) { got, err = tx.Backlog(); return }); err != nil {
		t.Fatal(err)
	}
	want := []Backlog{{"mqtt", Sent, 1, first.Add(3 * time.Minute)}, {"sms", Queued, 2, first}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("backlog\n got %v\nwant %v", got, want)
	}
}

// BenchmarkBacklog is what a scrape's backlog query costs on a store of
// 100,000 finished messages with 0, or 1,000, or 100,000 more queued.
func BenchmarkBacklog(b *testing.B) {
	for _, queued := range []int{0, 1000, 100000} {
		b.Run(fmt.Sprintf("finished=100000/queued=%d", queued), func(b *testing.B) {
			ctx := context.Background()
			s, err := Open(ctx, filepath.Join(b.TempDir(), "o.db"), Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			fill := func(n, from int, state string) {
				for _, q := range []string{
					`WITH RECURSIVE n(i) AS (SELECT ?1 UNION ALL SELECT i+1 FROM n WHERE i < ?1 + ?2 - 1)
					 INSERT INTO messages (id, direction, peer, text, parts, channel, created_at) SELECT printf('m-%09d', i), 'out', '+15555550100', 'a message', 1, 'http', 1700000000000 + i FROM n`,
					`INSERT INTO deliveries (message_id, connector, recipient, state, updated_at)
					 SELECT id, 'sms', peer, ?3, created_at FROM messages WHERE id >= printf('m-%09d', ?1)`,
				} {
					if _, err := s.DB().ExecContext(ctx, q, from, n, state); err != nil {
						b.Fatal(err)
					}
				}
			}
			fill(100000, 0, Delivered)
			if queued > 0 {
				fill(queued, 100000, Queued)
			}
			b.ResetTimer()
			for b.Loop() {
				var got []Backlog
				if err := s.View(ctx, func(tx *Tx) (err error) { got, err = tx.Backlog(); return }); err != nil {
					b.Fatal(err)
				}
				if queued > 0 && (len(got) != 1 || got[0].Count != queued) {
					b.Fatalf("backlog %v, want %d queued", got, queued)
				}
			}
		})
	}
}
