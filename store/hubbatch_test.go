package store

import (
	"bytes"
	"context"
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
