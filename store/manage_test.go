package store

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/outpost-sms/outpost/store/clock"
)

// addMsg stores a message (and, for an outbound one, a delivery to peer
// in state st) at the fake clock's time.
func addMsg(t *testing.T, s *Store, dir, peer, st string, tags ...string) string {
	t.Helper()
	m := &Message{Direction: dir, Peer: peer, Text: text("hi"), Tags: tags}
	if dir == In {
		m.State = Complete
	}
	update(t, s, func(tx *Tx) error {
		if err := tx.InsertMessage(m); err != nil {
			return err
		}
		if dir == Out {
			return tx.InsertDelivery(&Delivery{MessageID: m.ID, Connector: "sms", Recipient: peer, State: st}, "")
		}
		return nil
	})
	return m.ID
}

func list(t *testing.T, s *Store, f Filter) ([]string, string) {
	t.Helper()
	var ids []string
	var next string
	if err := s.View(t.Context(), func(tx *Tx) error {
		ms, n, err := tx.ListMessages(f)
		for _, m := range ms {
			ids = append(ids, m.ID)
		}
		next = n
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return ids, next
}

func TestListMessagesFiltersAndPages(t *testing.T) {
	s := openTest(t)
	clk := fakeClock(s, set)
	var all []string // oldest first
	for i := range 7 {
		clk.Advance(time.Second)
		all = append(all, addMsg(t, s, Out, fmt.Sprintf("+1555000%d", i%2), map[bool]string{true: Failed, false: Queued}[i%3 == 0]))
	}
	clk.Advance(time.Second)
	in := addMsg(t, s, In, "+15550009", "", "urgent", "sales")
	all = append(all, in)

	// Pages of 3, newest first, while a message arrives between pages.
	var got []string
	f := Filter{Limit: 3}
	for page := 0; ; page++ {
		ids, next := list(t, s, f)
		got = append(got, ids...)
		if page == 0 {
			clk.Advance(time.Second)
			addMsg(t, s, In, "+15550009", "")
		}
		if next == "" {
			break
		}
		f.Cursor = next
	}
	if len(got) != len(all) {
		t.Fatalf("paged %d messages, want %d: %v", len(got), len(all), got)
	}
	for i := range got {
		if got[i] != all[len(all)-1-i] {
			t.Fatalf("page order: got %v, want the reverse of %v", got, all)
		}
	}

	if ids, _ := list(t, s, Filter{Direction: Out, State: Failed}); len(ids) != 3 || ids[0] != all[6] {
		t.Errorf("failed outbound: %v", ids)
	}
	if ids, _ := list(t, s, Filter{Number: "+15550001"}); len(ids) != 3 {
		t.Errorf("to +15550001: %v", ids)
	}
	if ids, _ := list(t, s, Filter{Tag: "sales"}); len(ids) != 1 || ids[0] != in {
		t.Errorf("tag sales: %v", ids)
	}
	if ids, _ := list(t, s, Filter{Tag: "sale"}); len(ids) != 0 {
		t.Errorf("tag sale matched a longer tag: %v", ids)
	}
	if ids, _ := list(t, s, Filter{Since: set.Add(6500 * time.Millisecond)}); len(ids) != 3 {
		t.Errorf("since: %v", ids)
	}
	if err := s.View(t.Context(), func(tx *Tx) error { _, _, err := tx.ListMessages(Filter{Cursor: "junk!"}); return err }); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad cursor: %v", err)
	}
}

func TestMarkAndDeleteMessage(t *testing.T) {
	s := openTest(t)
	fakeClock(s, set)
	in := addMsg(t, s, In, "+15550009", "")
	out := addMsg(t, s, Out, "+15550001", Queued)
	var m Message
	update(t, s, func(tx *Tx) (err error) { m, err = tx.MarkMessage(in, Mark{Read: true, Tag: "done"}, "ann"); return })
	if !m.Read || m.Handled || len(m.Tags) != 1 || m.Tags[0] != "done" {
		t.Fatalf("marked: %+v", m)
	}
	if ids, _ := list(t, s, Filter{State: "unhandled"}); len(ids) != 1 || ids[0] != in {
		t.Errorf("unhandled: %v", ids)
	}
	if err := s.Update(t.Context(), func(tx *Tx) error { _, err := tx.MarkMessage(out, Mark{Read: true}, "ann"); return err }); !errors.Is(err, ErrInvalid) {
		t.Errorf("read on outbound: %v", err)
	}
	// Being sent: refused; once sent: gone with its history.
	update(t, s, func(tx *Tx) error { _, err := tx.ClaimDue("sms", 10); return err })
	if err := s.Update(t.Context(), func(tx *Tx) error { return tx.DeleteMessage(out) }); !errors.Is(err, ErrWrongState) {
		t.Fatalf("delete while sending: %v", err)
	}
	update(t, s, func(tx *Tx) error {
		ds, _ := tx.Deliveries(out)
		_, err := tx.SetDeliveryState(ds[0].ID, Transition{State: Sent})
		return err
	})
	update(t, s, func(tx *Tx) error { return tx.DeleteMessage(out) })
	var n int
	s.DB().QueryRow(`SELECT (SELECT COUNT(*) FROM deliveries) + (SELECT COUNT(*) FROM events WHERE message_id = ?)`, out).Scan(&n)
	if n != 0 {
		t.Errorf("%d deliveries or events left", n)
	}
	if err := s.Update(t.Context(), func(tx *Tx) error { return tx.DeleteMessage(out) }); !errors.Is(err, ErrNotFound) {
		t.Errorf("second delete: %v", err)
	}
}

func TestPruneKeepsRecentAndUnfinished(t *testing.T) {
	s := openTest(t)
	clk := fakeClock(s, boot)
	early := addMsg(t, s, In, "+15550009", "") // recorded in 1970
	clk.Set(set)                               // NTP: early is rebased to now
	clk.Advance(time.Minute)
	old := addMsg(t, s, Out, "+15550001", Sent)
	oldQueued := addMsg(t, s, Out, "+15550001", Queued)
	oldIn := addMsg(t, s, In, "+15550002", "")
	// Stored by an earlier build, a month before this one's date (its
	// clock floor): old, not insane.
	var earlier string
	update(t, s, func(tx *Tx) error {
		m := &Message{Direction: In, Peer: "+15550004", State: Complete, Text: text("x"), CreatedAt: clock.Floor.Add(-30 * 24 * time.Hour)}
		earlier = m.ID
		err := tx.InsertMessage(m)
		earlier = m.ID
		return err
	})
	clk.Advance(400 * 24 * time.Hour)
	recent := addMsg(t, s, In, "+15550003", "")

	prune := func() int64 {
		var total int64
		for {
			var n int64
			update(t, s, func(tx *Tx) (err error) { n, err = tx.PruneMessages(365*24*time.Hour, 2); return })
			if n == 0 {
				return total
			}
			total += n
		}
	}
	if n := prune(); n != 4 {
		t.Errorf("pruned %d, want 4 (the 1970 one, once rebased, is old too; and %s, from before the build date)", n, earlier)
	}
	left, _ := list(t, s, Filter{})
	if len(left) != 2 || left[0] != recent || left[1] != oldQueued {
		t.Errorf("left %v, want [%s %s] (not %s %s %s)", left, recent, oldQueued, early, old, oldIn)
	}

	// A clock back in 1970 prunes nothing.
	clk.Set(boot)
	update(t, s, func(tx *Tx) error { return nil })
	if n := prune(); n != 0 {
		t.Errorf("pruned %d with the clock in 1970", n)
	}
}
