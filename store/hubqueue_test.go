package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestHubQueueRefusesBadTopics: a topic no broker takes for a publish is
// an error, and nothing is queued (it would be refused by the hub again
// and again, in front of everything behind it).
func TestHubQueueRefusesBadTopics(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	for _, topic := range []string{"", "outpost/gw1/sms/status/p#1", "a/+/b", "a/\x00/b", "a/\xff\xfe", strings.Repeat("x", MaxTopicLen+1)} {
		err := s.Update(ctx, func(tx *Tx) error { return tx.EnqueueHub(&HubMessage{Topic: topic, Payload: []byte("x"), QoS: 1}) })
		if !errors.Is(err, ErrBadTopic) {
			t.Errorf("EnqueueHub(%.20q): %v, want ErrBadTopic", topic, err)
		}
		err = s.Update(ctx, func(tx *Tx) error {
			_, _, err := tx.EnqueueHubLimited(&HubMessage{Topic: topic, Payload: []byte("x"), QoS: 1}, HubLimits{})
			return err
		})
		if !errors.Is(err, ErrBadTopic) {
			t.Errorf("EnqueueHubLimited(%.20q): %v, want ErrBadTopic", topic, err)
		}
	}
	for _, topic := range []string{"a", "outpost/gw1/sms/status/x.y:z-1", "ünïcode/ok", "$not/a/wildcard", strings.Repeat("x", MaxTopicLen)} {
		if err := CheckTopic(topic); err != nil {
			t.Errorf("CheckTopic(%.20q): %v", topic, err)
		}
	}
	var st HubStats
	s.View(ctx, func(tx *Tx) (err error) { st, err = tx.HubQueueStats(); return })
	if st.Messages != 0 {
		t.Errorf("%d bad messages queued", st.Messages)
	}
}

// TestHubSetAside: a message set aside leaves the queue (what is behind it
// is next), is kept with its reason and counted.
func TestHubSetAside(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	var ids []int64
	for _, topic := range []string{"a", "poison", "c"} {
		m := &HubMessage{Topic: topic, Payload: []byte("payload " + topic), QoS: 1}
		if err := s.Update(ctx, func(tx *Tx) error { return tx.EnqueueHub(m) }); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	var moved, again bool
	if err := s.Update(ctx, func(tx *Tx) (err error) {
		if err = tx.DeleteHub(ids[:1]); err != nil {
			return err
		}
		if moved, err = tx.SetAsideHub(ids[1], "the hub dropped the connection"); err != nil {
			return err
		}
		again, err = tx.SetAsideHub(ids[1], "twice")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if !moved || again {
		t.Fatalf("set aside: %v, again: %v", moved, again)
	}
	var batch []HubMessage
	var st HubStats
	var latest []HubSetAside
	s.View(ctx, func(tx *Tx) (err error) {
		if batch, err = tx.HubBatch(0, 10); err != nil {
			return err
		}
		if st, err = tx.HubQueueStats(); err != nil {
			return err
		}
		latest, err = tx.HubSetAsideLatest(5)
		return err
	})
	if len(batch) != 1 || batch[0].Topic != "c" {
		t.Errorf("queue after set-aside: %+v", batch)
	}
	if st.Messages != 1 || st.Bytes != int64(len("payload c")) || st.SetAside != 1 {
		t.Errorf("stats %+v", st)
	}
	if len(latest) != 1 || latest[0].ID != ids[1] || latest[0].Topic != "poison" || latest[0].Reason != "the hub dropped the connection" ||
		latest[0].Bytes != len("payload poison") || latest[0].SetAsideAt.IsZero() {
		t.Errorf("set aside: %+v", latest)
	}
}

// TestHubQueueOwnNeverRefused: a full queue refuses devices' messages
// (their publisher keeps them) but never Outpost's own, which nothing
// would send again: under "refuse" they go past the bound, counted; under
// drop_oldest the oldest make room, and one larger than max_bytes alone
// goes past the bound without dropping everything.
func TestHubQueueOwnNeverRefused(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	enqueue := func(l HubLimits, m *HubMessage) (bool, int) {
		t.Helper()
		var ok bool
		var dropped int
		if err := s.Update(ctx, func(tx *Tx) (err error) {
			ok, dropped, err = tx.EnqueueHubLimited(m, l)
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
	for range 3 {
		enqueue(refuse, &HubMessage{Topic: "dev/a", Payload: []byte("12345"), QoS: 1})
	}
	if ok, _ := enqueue(refuse, &HubMessage{Topic: "dev/a", Payload: []byte("x"), QoS: 1}); ok {
		t.Fatal("a device's message accepted past max_messages under refuse")
	}
	own := &HubMessage{Topic: "outpost/gw/sms/in", Payload: []byte(`{"text":"hi"}`), QoS: 1, Own: true}
	if ok, dropped := enqueue(refuse, own); !ok || dropped != 0 || !own.OverBound || own.ID == 0 {
		t.Fatalf("own message under refuse: accepted %v, dropped %d, over bound %v, id %d", ok, dropped, own.OverBound, own.ID)
	}
	if st := stats(); st.Messages != 4 || st.Refused != 1 || st.OverBound != 1 {
		t.Fatalf("after the own message: %+v", st)
	}
	// Still full for devices.
	if ok, _ := enqueue(refuse, &HubMessage{Topic: "dev/a", Payload: []byte("y"), QoS: 1}); ok {
		t.Fatal("a device's message accepted while Outpost's own hold the queue past its bound")
	}
	// drop_oldest: the oldest make room for an own message as for any.
	drop := HubLimits{MaxMessages: 4, MaxBytes: 100, DropOldest: true}
	own2 := &HubMessage{Topic: "outpost/gw/sms/status/x", Payload: []byte("s"), QoS: 1, Own: true}
	if ok, dropped := enqueue(drop, own2); !ok || dropped != 1 || own2.OverBound {
		t.Fatalf("own message under drop_oldest: accepted %v, dropped %d, over bound %v", ok, dropped, own2.OverBound)
	}
	// One larger than max_bytes alone: nothing dropped for it, past the bound.
	big := &HubMessage{Topic: "outpost/gw/xform/f", Payload: []byte(strings.Repeat("z", 101)), QoS: 1, Own: true}
	if ok, dropped := enqueue(drop, big); !ok || dropped != 0 || !big.OverBound {
		t.Fatalf("own message larger than max_bytes: accepted %v, dropped %d, over bound %v", ok, dropped, big.OverBound)
	}
	if st := stats(); st.Messages != 5 || st.Dropped != 1 || st.Refused != 2 || st.OverBound != 2 {
		t.Fatalf("at the end: %+v", st)
	}
}

// TestHubRequeueSetAside: set-aside messages go back to the end of the
// queue (new ids, whole, in their first order), leave the set-aside
// table and are counted; an id not set aside moves nothing.
func TestHubRequeueSetAside(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	var ids []int64
	for _, topic := range []string{"p/1", "a", "p/2", "p/3", "b"} {
		m := &HubMessage{Topic: topic, Payload: []byte("payload " + topic), QoS: 1, Retain: topic == "p/2"}
		if err := s.Update(ctx, func(tx *Tx) error { return tx.EnqueueHub(m) }); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	if err := s.Update(ctx, func(tx *Tx) error {
		for _, i := range []int{0, 2, 3} {
			if _, err := tx.SetAsideHub(ids[i], "refused "+tx.Now().String()); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	requeue := func(ids []int64, all bool) ([]HubRequeued, error) {
		var r []HubRequeued
		err := s.Update(ctx, func(tx *Tx) (err error) { r, err = tx.RequeueHubSetAside(ids, all); return })
		return r, err
	}
	state := func() (q []HubMessage, aside []HubSetAside, st HubStats) {
		s.View(ctx, func(tx *Tx) (err error) {
			if q, err = tx.HubBatch(0, 100); err != nil {
				return err
			}
			if aside, err = tx.HubSetAsideLatest(MaxSetAside); err != nil {
				return err
			}
			st, err = tx.HubQueueStats()
			return err
		})
		return
	}
	// An unknown id (or one still queued) fails the whole request.
	if _, err := requeue([]int64{ids[2], ids[1]}, false); !errors.Is(err, ErrNotFound) {
		t.Fatalf("requeue of an id not set aside: %v, want ErrNotFound", err)
	}
	if q, aside, _ := state(); len(q) != 2 || len(aside) != 3 {
		t.Fatalf("a failed requeue moved something: queue %d, set aside %d", len(q), len(aside))
	}
	// One: at the end of the queue, whole, with a new id.
	r, err := requeue([]int64{ids[2]}, false)
	if err != nil || len(r) != 1 || r[0].ID != ids[2] || r[0].QueueID <= ids[4] || r[0].Topic != "p/2" {
		t.Fatalf("requeue %d: %+v, %v", ids[2], r, err)
	}
	q, aside, st := state()
	if len(q) != 3 || q[2].ID != r[0].QueueID || q[2].Topic != "p/2" || string(q[2].Payload) != "payload p/2" || !q[2].Retain || q[2].QoS != 1 {
		t.Fatalf("queue after requeue: %+v", q)
	}
	if len(aside) != 2 || aside[0].ID != ids[3] || aside[1].ID != ids[0] {
		t.Fatalf("still set aside: %+v", aside)
	}
	if st.Messages != 3 || st.Requeued != 1 || st.SetAside != 3 {
		t.Fatalf("stats: %+v", st)
	}
	// All: the rest, in the order they were first queued.
	if r, err = requeue(nil, true); err != nil || len(r) != 2 || r[0].ID != ids[0] || r[1].ID != ids[3] || r[0].QueueID >= r[1].QueueID {
		t.Fatalf("requeue all: %+v, %v", r, err)
	}
	q, aside, st = state()
	if len(q) != 5 || q[3].Topic != "p/1" || q[4].Topic != "p/3" || len(aside) != 0 || st.Requeued != 3 || st.Messages != 5 {
		t.Fatalf("after requeue all: queue %+v, set aside %+v, stats %+v", q, aside, st)
	}
	if r, err = requeue(nil, true); err != nil || len(r) != 0 {
		t.Fatalf("requeue all of nothing: %+v, %v", r, err)
	}
}

// TestHubBatchInsert: a batch longer than one INSERT takes is stored in
// order with consecutive ids, counted once each in the stats (no trigger
// counts them since migration 0009), and one that needs the bound's policy
// halfway splits the batch without losing the order.
func TestHubBatchInsert(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	stats := func() HubStats {
		var st HubStats
		s.View(ctx, func(tx *Tx) (err error) { st, err = tx.HubQueueStats(); return })
		return st
	}
	var one HubMessage
	if err := s.Update(ctx, func(tx *Tx) error {
		one = HubMessage{Topic: "field/one", Payload: []byte("1234"), QoS: 1}
		return tx.EnqueueHub(&one)
	}); err != nil {
		t.Fatal(err)
	}
	const n = 2*maxInsertRows + 7
	ms := make([]*HubMessage, n)
	var size int64
	for i := range ms {
		ms[i] = &HubMessage{Topic: "field/b", Payload: []byte(fmt.Sprintf("m%d", i)), QoS: 1}
		size += int64(len(ms[i].Payload))
	}
	ms[5].Payload = nil // stored as empty
	size -= 2
	var accepted []bool
	if err := s.Update(ctx, func(tx *Tx) (err error) {
		accepted, _, err = tx.EnqueueHubBatch(ms, HubLimits{})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for i, m := range ms {
		if !accepted[i] || m.ID != one.ID+1+int64(i) || m.CreatedAt.IsZero() {
			t.Fatalf("message %d: accepted %v, id %d (first %d)", i, accepted[i], m.ID, one.ID)
		}
	}
	if st := stats(); st.Messages != n+1 || st.Bytes != size+4 {
		t.Fatalf("stats %+v, want %d messages, %d bytes", st, n+1, size+4)
	}
	var got []HubMessage
	s.View(ctx, func(tx *Tx) (err error) { got, err = tx.HubBatch(one.ID, 2*n); return })
	if len(got) != n {
		t.Fatalf("%d queued", len(got))
	}
	for i, m := range got {
		if m.ID != ms[i].ID || !bytes.Equal(m.Payload, ms[i].Payload) {
			t.Fatalf("queued %d: id %d payload %q, want %d %q", i, m.ID, m.Payload, ms[i].ID, ms[i].Payload)
		}
	}
	// Deleting still counts (trigger hub_queue_out).
	if err := s.Update(ctx, func(tx *Tx) error { return tx.DeleteHub([]int64{one.ID, ms[0].ID}) }); err != nil {
		t.Fatal(err)
	}
	if st := stats(); st.Messages != n-1 || st.Bytes != size-2 {
		t.Fatalf("after delete %+v", st)
	}
	// Under a bound: the batch's messages that fit go in together, the
	// one past it takes the policy (the oldest goes), in order.
	ms = []*HubMessage{{Topic: "field/c", Payload: []byte("x")}, {Topic: "field/c", Payload: []byte("y")}, {Topic: "field/c", Payload: []byte("z")}}
	var dropped []int
	if err := s.Update(ctx, func(tx *Tx) (err error) {
		accepted, dropped, err = tx.EnqueueHubBatch(ms, HubLimits{MaxMessages: n + 1, DropOldest: true})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if !accepted[0] || !accepted[1] || !accepted[2] || dropped[0]+dropped[1] != 0 || dropped[2] != 1 {
		t.Fatalf("accepted %v dropped %v", accepted, dropped)
	}
	if !(ms[0].ID < ms[1].ID && ms[1].ID < ms[2].ID) {
		t.Fatalf("ids %d %d %d out of order", ms[0].ID, ms[1].ID, ms[2].ID)
	}
	if st := stats(); st.Messages != n+1 || st.Dropped != 1 {
		t.Fatalf("under the bound %+v", st)
	}
}
