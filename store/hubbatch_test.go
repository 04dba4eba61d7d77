package store

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"
)

// A batch for the hub is bounded in bytes as well as in messages: a
// window of 256 messages of 256 KiB each was 64 MiB in memory.
func TestHubBatchBytes(t *testing.T) {
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "o.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sizes := []int{100, 200, 300, 5000, 10}
	err = s.Update(context.Background(), func(tx *Tx) error {
		for i, n := range sizes {
			if err := tx.EnqueueHub(&HubMessage{Topic: "t", Payload: bytes.Repeat([]byte{byte('a' + i)}, n), QoS: 1}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	batch := func(after int64, limit int, max int64) (lens []int) {
		t.Helper()
		var b []HubMessage
		if err := s.View(context.Background(), func(tx *Tx) (err error) { b, err = tx.HubBatchBytes(after, limit, max); return }); err != nil {
			t.Fatal(err)
		}
		for _, m := range b {
			lens = append(lens, len(m.Payload))
		}
		return lens
	}
	check := func(got []int, want ...int) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("batch %v, want %v", got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("batch %v, want %v", got, want)
			}
		}
	}
	check(batch(0, 10, 600), 100, 200, 300)
	check(batch(0, 10, 599), 100, 200)
	check(batch(0, 2, 1<<20), 100, 200)
	check(batch(3, 10, 1000), 5000) // the first one goes even when larger
	check(batch(0, 10, 50), 100)
}

// The committer does not read the queue's size before each batch while
// an upper bound of it (its size read earlier, plus what was inserted
// since) is within the limits: deletes, and writes that failed, leave
// the bound above the truth, and near the limits the size is read again,
// so the limits hold exactly.
func TestHubBatchLimitsWithoutReadingSize(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "o.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	l := HubLimits{MaxMessages: 10, MaxBytes: 1000}
	enqueue := func(n, size int) (ids []int64, accepted int) {
		t.Helper()
		ms := make([]*HubMessage, n)
		for i := range ms {
			ms[i] = &HubMessage{Topic: "dev/x", Payload: bytes.Repeat([]byte("x"), size), QoS: 1}
		}
		var acc []bool
		if err := s.Update(ctx, func(tx *Tx) (err error) { acc, _, err = tx.EnqueueHubBatch(ms, l); return }); err != nil {
			t.Fatal(err)
		}
		for i, a := range acc {
			if a {
				accepted++
				ids = append(ids, ms[i].ID)
			}
		}
		return ids, accepted
	}
	stats := func() HubStats {
		t.Helper()
		var st HubStats
		if err := s.View(ctx, func(tx *Tx) (err error) { st, err = tx.HubQueueStats(); return }); err != nil {
			t.Fatal(err)
		}
		return st
	}
	ids, n := enqueue(8, 10)
	if n != 8 {
		t.Fatalf("accepted %d of 8 in an empty queue", n)
	}
	if err := s.Update(ctx, func(tx *Tx) error { return tx.DeleteHub(ids[:5]) }); err != nil {
		t.Fatal(err)
	}
	// A write that inserted and then failed: nothing of it is queued.
	failed := errors.New("failed")
	err = s.Update(ctx, func(tx *Tx) error {
		if _, _, err := tx.EnqueueHubBatch([]*HubMessage{{Topic: "dev/x", Payload: []byte("y"), QoS: 1}}, l); err != nil {
			return err
		}
		return failed
	})
	if !errors.Is(err, failed) {
		t.Fatalf("write: %v", err)
	}
	// 3 are queued (MaxMessages 10): 6 fit, then 1, then none.
	if _, n := enqueue(6, 10); n != 6 {
		t.Fatalf("accepted %d of 6 with 3 queued and room for 10", n)
	}
	if _, n := enqueue(1, 10); n != 1 {
		t.Fatalf("accepted %d of 1 with 9 queued and room for 10", n)
	}
	if _, n := enqueue(1, 10); n != 0 {
		t.Fatalf("accepted %d of 1 in a full queue", n)
	}
	if st := stats(); st.Messages != 10 || st.Bytes != 100 || st.Refused != 1 {
		t.Fatalf("stats %+v, want 10 messages of 100 bytes, 1 refused", st)
	}
	// The byte bound the same way, once the queue is emptied.
	if err := s.Update(ctx, func(tx *Tx) error {
		b, err := tx.HubBatch(0, 100)
		if err != nil {
			return err
		}
		var del []int64
		for _, m := range b {
			del = append(del, m.ID)
		}
		return tx.DeleteHub(del)
	}); err != nil {
		t.Fatal(err)
	}
	if _, n := enqueue(2, 450); n != 2 {
		t.Fatalf("accepted %d of 2 messages of 450 bytes in an empty queue of 1000", n)
	}
	if _, n := enqueue(1, 101); n != 0 {
		t.Fatalf("accepted a message past the byte bound")
	}
	if st := stats(); st.Messages != 2 || st.Bytes != 900 {
		t.Fatalf("stats %+v, want 2 messages of 900 bytes", st)
	}
}
