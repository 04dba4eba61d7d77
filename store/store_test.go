package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func openTest(t testing.TB) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "outpost.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func text(s string) *string { return &s }

func TestMigrationsAndReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "o.db")
	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	m := &Message{Direction: In, Peer: "+1", Text: text("hello")}
	if err := s.Update(ctx, func(tx *Tx) error { return tx.InsertMessage(m) }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(ctx, path, Options{})
	if err != nil {
		t.Fatalf("reopen (migrations must be idempotent): %v", err)
	}
	defer s.Close()
	var got Message
	s.View(ctx, func(tx *Tx) error { got, err = tx.Message(m.ID); return err })
	if err != nil || got.Text == nil || *got.Text != "hello" {
		t.Fatalf("got %+v, %v", got, err)
	}
	var mode string
	s.DB().QueryRow(`PRAGMA journal_mode`).Scan(&mode)
	if mode != "wal" {
		t.Fatalf("journal_mode %q", mode)
	}
}

func TestDedupKey(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	a := &Message{Direction: In, Peer: "+1", Text: text("x"), DedupKey: "k1"}
	b := &Message{Direction: In, Peer: "+1", Text: text("x"), DedupKey: "k1"}
	if err := s.Update(ctx, func(tx *Tx) error { return tx.InsertMessage(a) }); err != nil {
		t.Fatal(err)
	}
	err := s.Update(ctx, func(tx *Tx) error { return tx.InsertMessage(b) })
	if !errors.Is(err, ErrDuplicate) || b.ID != a.ID {
		t.Fatalf("want ErrDuplicate with id %s, got %v %s", a.ID, err, b.ID)
	}
}

func TestGroupCommitIsolatesFailures(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 50)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Update(ctx, func(tx *Tx) error {
				if err := tx.InsertMessage(&Message{Direction: Out, Peer: fmt.Sprint(i)}); err != nil {
					return err
				}
				if i%5 == 0 {
					return errors.New("boom")
				}
				return nil
			})
		}()
	}
	wg.Wait()
	var n int
	s.DB().QueryRow(`SELECT COUNT(*) FROM messages`).Scan(&n)
	if n != 40 {
		t.Fatalf("want 40 rows (failed updates rolled back alone), got %d", n)
	}
	for i, err := range errs {
		if (i%5 == 0) != (err != nil) {
			t.Fatalf("update %d: err %v", i, err)
		}
	}
}

func TestClaimRetryAndHistory(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	clk := fakeClock(s, now)
	m := &Message{Direction: Out, Peer: "+1"}
	d := &Delivery{Connector: "sms", Recipient: "+1"}
	committed := make(chan struct{})
	err := s.Update(ctx, func(tx *Tx) error {
		if err := tx.InsertMessage(m); err != nil {
			return err
		}
		d.MessageID = m.ID
		tx.AfterCommit(func() { close(committed) })
		return tx.InsertDelivery(d, "accepted")
	})
	if err != nil {
		t.Fatal(err)
	}
	<-committed
	var claimed []Delivery
	s.Update(ctx, func(tx *Tx) (err error) { claimed, err = tx.ClaimDue("sms", 10); return })
	if len(claimed) != 1 || claimed[0].State != Sending || claimed[0].Attempts != 1 {
		t.Fatalf("claimed %+v", claimed)
	}
	s.Update(ctx, func(tx *Tx) (err error) { claimed, err = tx.ClaimDue("sms", 10); return })
	if len(claimed) != 0 {
		t.Fatal("claimed twice")
	}
	s.Update(ctx, func(tx *Tx) error {
		_, err := tx.SetDeliveryState(d.ID, Transition{State: Queued, NextAt: now.Add(time.Minute), LastError: "modem busy"})
		return err
	})
	s.Update(ctx, func(tx *Tx) (err error) { claimed, err = tx.ClaimDue("sms", 10); return })
	if len(claimed) != 0 {
		t.Fatal("claimed before next_at")
	}
	clk.Advance(2 * time.Minute)
	s.Update(ctx, func(tx *Tx) (err error) { claimed, err = tx.ClaimDue("sms", 10); return })
	if len(claimed) != 1 || claimed[0].Attempts != 2 {
		t.Fatalf("claimed %+v", claimed)
	}
	var n int
	s.Update(ctx, func(tx *Tx) (err error) { n, err = tx.RecoverSending("sms", "restart"); return })
	if n != 1 {
		t.Fatalf("recovered %d", n)
	}
	var evs []Event
	s.View(ctx, func(tx *Tx) (err error) { evs, err = tx.Events(m.ID); return })
	var states []string
	for _, e := range evs {
		states = append(states, e.State)
	}
	if fmt.Sprint(states) != "[queued sending queued sending queued]" {
		t.Fatalf("history %v", states)
	}
}

func TestCounterWraps(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	var got []int
	for i := 0; i < 5; i++ {
		s.Update(ctx, func(tx *Tx) error {
			n, err := tx.NextCounter("concat_ref", 3)
			got = append(got, n)
			return err
		})
	}
	if fmt.Sprint(got) != "[1 2 3 1 2]" {
		t.Fatalf("got %v", got)
	}
}

func TestInboundPartsDuplicateAndReuse(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	add := func(seq int, pdu string) (dup bool) {
		if err := s.Update(ctx, func(tx *Tx) (err error) {
			dup, err = tx.AddInboundPart(InboundPart{GroupKey: "g", Seq: seq, Total: 2, PDU: []byte(pdu)})
			return
		}); err != nil {
			t.Fatal(err)
		}
		return dup
	}
	if add(1, "a1") || !add(1, "a1") || add(2, "a2") {
		t.Fatal("duplicate detection wrong")
	}
	s.Update(ctx, func(tx *Tx) error { return tx.FinishParts("g", "m1") })
	if !add(2, "a2") {
		t.Fatal("a finished part read again must be a duplicate")
	}
	if add(1, "b1") {
		t.Fatal("a new message reusing the reference is not a duplicate")
	}
	var open []InboundPart
	s.View(ctx, func(tx *Tx) (err error) { open, err = tx.OpenParts("g"); return })
	if len(open) != 1 || string(open[0].PDU) != "b1" {
		t.Fatalf("open parts %+v", open)
	}
}

func TestMatchSentPartNationalForm(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	m := &Message{Direction: Out, Peer: "+447700900123"}
	d := &Delivery{Connector: "sms", Recipient: "+447700900123"}
	s.Update(ctx, func(tx *Tx) error {
		tx.InsertMessage(m)
		d.MessageID = m.ID
		tx.InsertDelivery(d, "")
		return tx.RecordSentPart(SentPart{DeliveryID: d.ID, Seq: 1, Total: 1, Modem: "m", MR: 7, Recipient: d.Recipient})
	})
	var p SentPart
	var err error
	s.View(ctx, func(tx *Tx) error { p, err = tx.MatchSentPart("m", 7, "07700900123"); return nil })
	if err != nil || p.DeliveryID != d.ID {
		t.Fatalf("got %+v %v", p, err)
	}
	s.View(ctx, func(tx *Tx) error { _, err = tx.MatchSentPart("m", 7, "+15550000000"); return nil })
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("want not found, got %v", err)
	}
}

// BenchmarkIngest measures durable (synchronous=FULL) inbound message
// commits with concurrent writers sharing group commits.
func BenchmarkIngest(b *testing.B) {
	s := openTest(b)
	ctx := context.Background()
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			err := s.Update(ctx, func(tx *Tx) error {
				m := &Message{Direction: In, Peer: "+15555550100", Text: text("benchmark message body of ordinary length"), DedupKey: NewID()}
				if err := tx.InsertMessage(m); err != nil {
					return err
				}
				return tx.InsertDelivery(&Delivery{MessageID: m.ID, Connector: "mqtt"}, "received")
			})
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkIngestSerial is one writer waiting for each commit: the fsync
// cost per message without grouping.
func BenchmarkIngestSerial(b *testing.B) {
	s := openTest(b)
	ctx := context.Background()
	for b.Loop() {
		s.Update(ctx, func(tx *Tx) error {
			return tx.InsertMessage(&Message{Direction: In, Peer: "+1", Text: text("x"), DedupKey: NewID()})
		})
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

func TestOrphanReports(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	s := openTest(t)
	clk := fakeClock(s, now)
	update := func(f func(tx *Tx) error) {
		t.Helper()
		if err := s.Update(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	update(func(tx *Tx) error { return tx.AddOrphanReport("m1", 7, "+15555550100", 0) })
	update(func(tx *Tx) error { return tx.AddOrphanReport("m1", 8, "0555550100", 70) })
	take := func(modem string, mr int, to string, since time.Time) (int, bool) {
		var st int
		var ok bool
		update(func(tx *Tx) (err error) { st, ok, err = tx.TakeOrphanReport(modem, mr, to, since); return })
		return st, ok
	}
	if _, ok := take("m2", 7, "+15555550100", now.Add(-time.Minute)); ok {
		t.Error("matched another modem's report")
	}
	if _, ok := take("m1", 7, "+15555559999", now.Add(-time.Minute)); ok {
		t.Error("matched another recipient's report")
	}
	if _, ok := take("m1", 7, "+15555550100", now.Add(time.Second)); ok {
		t.Error("matched a report older than the window")
	}
	if st, ok := take("m1", 7, "+15555550100", now.Add(-time.Minute)); !ok || st != 0 {
		t.Errorf("take: %d %v", st, ok)
	}
	if _, ok := take("m1", 7, "+15555550100", now.Add(-time.Minute)); ok {
		t.Error("a report was taken twice")
	}
	// The national form of the number matches (the network reports what it saw).
	if st, ok := take("m1", 8, "+15555550100", now.Add(-time.Minute)); !ok || st != 70 {
		t.Errorf("national form: %d %v", st, ok)
	}
	update(func(tx *Tx) error { return tx.AddOrphanReport("m1", 9, "+15555550100", 0) })
	clk.Advance(2 * time.Hour)
	var n int64
	update(func(tx *Tx) (err error) { n, err = tx.ForgetOrphanReports(clk.Now().Add(-time.Hour)); return })
	if n != 1 {
		t.Errorf("forgot %d, want 1", n)
	}
}

func TestHubQueueLimits(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	enqueue := func(l HubLimits, payload string) (bool, int) {
		t.Helper()
		var ok bool
		var dropped int
		if err := s.Update(ctx, func(tx *Tx) (err error) {
			ok, dropped, err = tx.EnqueueHubLimited(&HubMessage{Topic: "field/a", Payload: []byte(payload), QoS: 1}, l)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return ok, dropped
	}
	stats := func() HubStats {
		var st HubStats
		s.View(ctx, func(tx *Tx) (err error) { st, err = tx.HubQueueStats(); return })
		return st
	}
	refuse := HubLimits{MaxMessages: 3, MaxBytes: 100}
	for i := 0; i < 3; i++ {
		if ok, _ := enqueue(refuse, "12345"); !ok {
			t.Fatalf("message %d refused below the limit", i)
		}
	}
	if ok, _ := enqueue(refuse, "x"); ok {
		t.Fatal("a fourth message accepted past max_messages = 3")
	}
	if st := stats(); st.Messages != 3 || st.Bytes != 15 || st.Refused != 1 {
		t.Fatalf("%+v", st)
	}
	drop := HubLimits{MaxMessages: 3, MaxBytes: 20, DropOldest: true}
	if ok, dropped := enqueue(drop, "abcdefghij"); !ok || dropped != 1 { // 4 > 3 and 15+10 > 20: one goes
		t.Fatalf("accepted %v, dropped %d, want 1 dropped", ok, dropped)
	}
	if ok, _ := enqueue(drop, strings.Repeat("z", 21)); ok {
		t.Fatal("a message larger than max_bytes accepted")
	}
	var batch []HubMessage
	s.View(ctx, func(tx *Tx) (err error) { batch, err = tx.HubBatch(0, 10); return })
	if len(batch) != 3 || string(batch[2].Payload) != "abcdefghij" {
		t.Fatalf("queue %+v: the oldest must go first", batch)
	}
	if st := stats(); st.Messages != 3 || st.Bytes != 20 || st.Dropped != 1 || st.Refused != 2 {
		t.Fatalf("%+v", st)
	}
	var n int64
	s.Update(ctx, func(tx *Tx) (err error) { n, err = tx.ExpireHub(tx.Now().Add(time.Hour)); return })
	if st := stats(); n != 3 || st.Messages != 0 || st.Bytes != 0 || st.Expired != 3 {
		t.Fatalf("expired %d, %+v", n, st)
	}
}

// TestSubmitOrderAndDurability: Submit does not wait, its outcomes come in
// the order of the calls, and each after its write is committed.
func TestSubmitOrderAndDurability(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	const n = 200
	var mu sync.Mutex
	var order []int
	done := make(chan struct{})
	for i := 0; i < n; i++ {
		m := &HubMessage{Topic: "t", Payload: []byte(fmt.Sprint(i)), QoS: 1}
		s.Submit(ctx, func(tx *Tx) error { return tx.EnqueueHub(m) }, func(err error) {
			if err != nil {
				t.Error(err)
			}
			// Committed: a reader sees it now.
			var st HubStats
			s.View(ctx, func(tx *Tx) (err error) { st, err = tx.HubQueueStats(); return })
			mu.Lock()
			order = append(order, i)
			if st.Messages < int64(len(order)) {
				t.Errorf("outcome %d reported before its commit (%d stored)", i, st.Messages)
			}
			if len(order) == n {
				close(done)
			}
			mu.Unlock()
		})
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("not every Submit got its outcome")
	}
	for i, v := range order {
		if v != i {
			t.Fatalf("outcomes out of order: %v", order)
		}
	}
}

// TestHubQueueReplacesRetainedState: a retained state marked Replace
// takes the place of the ones still queued on its topic (a week of modem
// polls offline is one message, not 20,000), and nothing else is touched:
// other topics, non-retained messages, and retained pass-through not
// marked Replace stay, in order.
func TestHubQueueReplacesRetainedState(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	enqueue := func(m HubMessage) {
		t.Helper()
		if err := s.Update(ctx, func(tx *Tx) error {
			_, _, err := tx.EnqueueHubLimited(&m, HubLimits{})
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	state := func(topic, v string) HubMessage {
		return HubMessage{Topic: topic, Payload: []byte(v), QoS: 1, Retain: true, Replace: true}
	}
	enqueue(state("m/a/status", "a1"))
	enqueue(HubMessage{Topic: "sms/in", Payload: []byte("in1"), QoS: 1})
	enqueue(HubMessage{Topic: "field/last", Payload: []byte("f1"), QoS: 1, Retain: true})
	enqueue(state("m/b/status", "b1"))
	enqueue(state("m/a/status", "a2"))
	enqueue(HubMessage{Topic: "field/last", Payload: []byte("f2"), QoS: 1, Retain: true})
	enqueue(state("m/a/status", "a3"))
	var batch []HubMessage
	var st HubStats
	s.View(ctx, func(tx *Tx) (err error) {
		if batch, err = tx.HubBatch(0, 100); err != nil {
			return err
		}
		st, err = tx.HubQueueStats()
		return err
	})
	var got []string
	for _, m := range batch {
		got = append(got, string(m.Payload))
	}
	if want := "in1 f1 b1 f2 a3"; strings.Join(got, " ") != want {
		t.Fatalf("queue %q, want %q", got, want)
	}
	if st.Messages != 5 || st.Bytes != 11 || st.Dropped != 0 {
		t.Fatalf("counters %+v", st)
	}
}

// TestWALCheckpointed: after writes, the committer checkpoints the WAL
// and truncates it; a reader holding a snapshot makes a checkpoint busy
// (writes go on meanwhile), and the next one, once the reader is done,
// finishes without another write.
func TestWALCheckpointed(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "outpost.db"), Options{CheckpointEvery: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	write := func(n int) {
		t.Helper()
		if err := s.Update(ctx, func(tx *Tx) error {
			for i := 0; i < n; i++ {
				if err := tx.EnqueueHub(&HubMessage{Topic: "t", Payload: make([]byte, 1000), QoS: 1}); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	waitFiles := func(what string, ok func(Files) bool) Files {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			f := s.Files()
			if ok(f) {
				return f
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %+v", what, f)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	write(500)
	f := waitFiles("WAL truncated", func(f Files) bool { return f.WALBytes == 0 && !f.Checkpoint.At.IsZero() && !f.Checkpoint.Busy })
	if f.DBBytes < 500*1000 || f.Checkpoint.WALBytes < 500*1000 {
		t.Fatalf("after the checkpoint: %+v", f)
	}

	// A reader in the middle of a read transaction.
	rtx, err := s.DB().BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := rtx.QueryRow(`SELECT COUNT(*) FROM hub_queue`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	write(100)
	waitFiles("a busy checkpoint", func(f Files) bool { return f.Checkpoint.Busy })
	start := time.Now()
	write(1) // the writer is not held up by the reader
	if d := time.Since(start); d > time.Second {
		t.Fatalf("a write took %v while a checkpoint was busy", d)
	}
	rtx.Rollback()
	waitFiles("the WAL truncated once the reader is done", func(f Files) bool { return f.WALBytes == 0 && !f.Checkpoint.Busy })
}

// TestExpireHubTakesTheOldest: only what was queued before the limit
// goes, and it is counted.
func TestExpireHubTakesTheOldest(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	t0 := time.Now()
	clk := fakeClock(s, t0)
	enqueue := func(at time.Time, payloads ...string) {
		t.Helper()
		clk.Advance(at.Sub(clk.Now()))
		if err := s.Update(ctx, func(tx *Tx) error {
			for _, p := range payloads {
				if err := tx.EnqueueHub(&HubMessage{Topic: "t", Payload: []byte(p), QoS: 1}); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	enqueue(t0, "old1", "old2", "old3")
	enqueue(t0.Add(2*time.Hour), "new1", "new2")
	var n int64
	var batch []HubMessage
	var st HubStats
	if err := s.Update(ctx, func(tx *Tx) (err error) {
		if n, err = tx.ExpireHub(t0.Add(time.Hour)); err != nil {
			return err
		}
		if batch, err = tx.HubBatch(0, 10); err != nil {
			return err
		}
		st, err = tx.HubQueueStats()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if n != 3 || len(batch) != 2 || string(batch[0].Payload) != "new1" || st.Expired != 3 || st.Messages != 2 {
		t.Fatalf("expired %d, queue %d (first %q), stats %+v", n, len(batch), batch[0].Payload, st)
	}
}

// BenchmarkExpireHub is the age check the uplink makes every second, on
// a queue of 100,000 messages none of which is too old.
func BenchmarkExpireHub(b *testing.B) {
	s := openTest(b)
	ctx := context.Background()
	for range 100 {
		s.Update(ctx, func(tx *Tx) error {
			for range 1000 {
				if err := tx.EnqueueHub(&HubMessage{Topic: "field/x", Payload: make([]byte, 200), QoS: 1}); err != nil {
					return err
				}
			}
			return nil
		})
	}
	b.ResetTimer()
	for range b.N {
		s.Update(ctx, func(tx *Tx) error { _, err := tx.ExpireHub(tx.Now().Add(-time.Hour)); return err })
	}
}

// A lane claims only its recipient's deliveries; the lane of the others
// those of no listed recipient; NextDueLane looks at the lane alone.
func TestClaimDueLane(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	m := &Message{Direction: Out, Peer: "x"}
	if err := s.Update(ctx, func(tx *Tx) error {
		if err := tx.InsertMessage(m); err != nil {
			return err
		}
		for _, r := range []string{"a", "b", "gone"} {
			if err := tx.InsertDelivery(&Delivery{MessageID: m.ID, Connector: "webhook", Recipient: r}, "queued"); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	claim := func(l Lane) []string {
		t.Helper()
		var ds []Delivery
		if err := s.Update(ctx, func(tx *Tx) (err error) { ds, err = tx.ClaimDueLane("webhook", l, 10); return }); err != nil {
			t.Fatal(err)
		}
		var rs []string
		for _, d := range ds {
			rs = append(rs, d.Recipient)
		}
		return rs
	}
	var next time.Time
	s.View(ctx, func(tx *Tx) (err error) { next, err = tx.NextDueLane("webhook", Lane{Recipient: "b"}); return })
	if next.IsZero() {
		t.Fatal("lane b has nothing due")
	}
	if got := claim(Lane{Recipient: "a"}); len(got) != 1 || got[0] != "a" {
		t.Fatalf("lane a claimed %v", got)
	}
	if got := claim(Lane{Others: []string{"a", "b"}}); len(got) != 1 || got[0] != "gone" {
		t.Fatalf("the others' lane claimed %v", got)
	}
	if got := claim(Lane{All: true}); len(got) != 1 || got[0] != "b" {
		t.Fatalf("all claimed %v", got)
	}
	s.View(ctx, func(tx *Tx) (err error) { next, err = tx.NextDueLane("webhook", Lane{Recipient: "b"}); return })
	if !next.IsZero() {
		t.Fatal("lane b still has something due")
	}
}
