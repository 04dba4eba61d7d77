package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/outpost-sms/outpost/bridge"
	"github.com/outpost-sms/outpost/store"
)

func waitUntil(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// allowAll lets every client connect and use every topic.
type allowAll struct{ mochi.HookBase }

func (allowAll) ID() string { return "allow-all" }
func (allowAll) Provides(b byte) bool {
	return b == mochi.OnConnectAuthenticate || b == mochi.OnACLCheck
}
func (allowAll) OnConnectAuthenticate(*mochi.Client, packets.Packet) bool { return true }
func (allowAll) OnACLCheck(*mochi.Client, string, bool) bool              { return true }

// received is a hub (an embedded broker) that passes on what it gets.
type received struct {
	mochi.HookBase
	got chan packets.Packet
}

func (h *received) ID() string           { return "received" }
func (h *received) Provides(b byte) bool { return b == mochi.OnPublish }
func (h *received) OnPublish(cl *mochi.Client, pk packets.Packet) (packets.Packet, error) {
	if !cl.Net.Inline {
		h.got <- pk
	}
	return pk, nil
}

// startHub runs an embedded broker as the hub on 127.0.0.1:0 and returns
// its address and what it receives.
func startHub(t *testing.T) (string, chan packets.Packet) {
	t.Helper()
	srv := mochi.New(&mochi.Options{InlineClient: true, Logger: slog.New(slog.DiscardHandler)})
	srv.AddHook(new(allowAll), nil)
	rec := &received{got: make(chan packets.Packet, 100)}
	srv.AddHook(rec, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.AddListener(listeners.NewNet("hub", ln)); err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String(), rec.got
}

// gateway is a router on a store in a temporary folder with the hub
// connector as the default route of inbound messages.
type gateway struct {
	st     *store.Store
	router *bridge.Router
	hub    *Connector
}

func newGateway(t *testing.T, opts Options) *gateway {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "outpost.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	router := bridge.New(st, nil)
	opts.Base, opts.ClientID = "outpost/gw1/", "gw1"
	c := New(opts, router)
	router.Add(c)
	router.Routes, router.FormRoutes = []string{"hub"}, []string{"hub"}
	return &gateway{st: st, router: router, hub: c}
}

// run runs the router (and so the hub link) until the test ends.
func (g *gateway) run(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); g.router.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// inbound stores an inbound SMS and returns its id.
func (g *gateway) inbound(t *testing.T, text string) string {
	t.Helper()
	m := &store.Message{Peer: "+15555550101", Text: &text, Source: "sms", FromAddr: "tel:+15555550101", Modem: "m1", Parts: 1}
	if err := g.st.Update(context.Background(), func(tx *store.Tx) error { return g.router.StoreInbound(tx, m, "test") }); err != nil {
		t.Fatal(err)
	}
	return m.ID
}

// delivery is the message's one delivery to the hub, its history, and
// how many copies of it wait in the hub queue.
func (g *gateway) delivery(t *testing.T, id string) (store.Delivery, []store.Event, int) {
	t.Helper()
	var d store.Delivery
	var evs []store.Event
	var copies int
	err := g.st.View(context.Background(), func(tx *store.Tx) error {
		ds, err := tx.Deliveries(id)
		if err != nil {
			return err
		}
		n := 0
		for _, x := range ds {
			if x.Connector == "hub" {
				d, n = x, n+1
			}
		}
		if n != 1 {
			t.Fatalf("%d deliveries to the hub: %+v", n, ds)
		}
		if evs, err = tx.Events(id); err != nil {
			return err
		}
		copies, err = tx.HubCopies(d.ID)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return d, evs, copies
}

func historyHas(evs []store.Event, state, detail string) bool {
	for _, e := range evs {
		if e.State == state && strings.Contains(e.Detail, detail) {
			return true
		}
	}
	return false
}

// An inbound message routed to the hub is a delivery (connector hub,
// recipient "") whose copy waits in the hub queue, committed with it; it
// stays queued while the hub is away and becomes sent, "reached the hub",
// with its copy deleted, once the hub acknowledged it. The hub gets the
// sms/in payload.
func TestInboundToHubIsADelivery(t *testing.T) {
	addr, got := startHub(t)
	g := newGateway(t, Options{URL: "tcp://" + addr})
	id := g.inbound(t, "hello hub")
	d, _, copies := g.delivery(t, id)
	if d.State != store.Queued || d.Recipient != "" || copies != 1 {
		t.Fatalf("before the link runs: %+v, %d copies", d, copies)
	}
	g.run(t)
	deadline := time.After(10 * time.Second)
	for seen := false; !seen; {
		select {
		case pk := <-got:
			if pk.TopicName == "outpost/gw1/status" || pk.TopicName == "outpost/gw1/hub/queue" {
				continue
			}
			seen = true
			var v map[string]any
			json.Unmarshal(pk.Payload, &v)
			if pk.TopicName != "outpost/gw1/sms/in" || v["id"] != id || v["text"] != "hello hub" || v["from"] != "+15555550101" {
				t.Errorf("the hub got %s %s", pk.TopicName, pk.Payload)
			}
		case <-deadline:
			t.Fatal("nothing reached the hub")
		}
	}
	waitUntil(t, "the delivery to become sent", 10*time.Second, func() bool {
		d, _, _ := g.delivery(t, id)
		return d.State == store.Sent
	})
	d, evs, copies := g.delivery(t, id)
	if !historyHas(evs, store.Sent, ReachedHub) || copies != 0 || d.Attempts != 0 {
		t.Errorf("after the PUBACK: %+v, %d copies, history %+v", d, copies, evs)
	}
}

// Every way a copy leaves the hub queue without reaching the hub ends its
// delivery with the reason: dropped for a full queue, too old, set aside
// (and put back: queued again), cancelled (the copy removed); a retry of
// a failed one queues a new copy. Status copies have no delivery.
func TestHubCopyEndsItsDelivery(t *testing.T) {
	ctx := context.Background()
	g := newGateway(t, Options{URL: "tcp://127.0.0.1:1", Limits: store.HubLimits{MaxMessages: 3, DropOldest: true}})
	a, b, c := g.inbound(t, "a"), g.inbound(t, "b"), g.inbound(t, "c")
	// A status copy: in the queue, no delivery.
	err := g.st.Update(ctx, func(tx *store.Tx) error {
		return g.hub.statusToHub(tx, bridge.StatusChange{MessageID: "x", Connector: "sms", State: store.Sent})
	})
	if err != nil {
		t.Fatal(err)
	}
	// The queue held 3: the status made room by dropping a's copy.
	if d, evs, n := g.delivery(t, a); d.State != store.Failed || n != 0 || !historyHas(evs, store.Failed, "dropped from the hub queue") {
		t.Errorf("a, dropped: %+v, %d copies, %+v", d, n, evs)
	}
	// b's copy set aside, then put back.
	var qb int64
	g.st.View(ctx, func(tx *store.Tx) error {
		ms, err := tx.HubBatch(0, 10)
		for _, m := range ms {
			if d, _, _ := g.delivery(t, b); m.DeliveryID == d.ID {
				qb = m.ID
			}
		}
		return err
	})
	if qb == 0 {
		t.Fatal("b's copy is not linked to its delivery")
	}
	if err := g.st.Update(ctx, func(tx *store.Tx) error { _, err := tx.SetAsideHub(qb, "the hub dropped the connection"); return err }); err != nil {
		t.Fatal(err)
	}
	if d, evs, n := g.delivery(t, b); d.State != store.Failed || n != 0 || !historyHas(evs, store.Failed, "set aside: the hub dropped the connection") {
		t.Errorf("b, set aside: %+v, %d copies, %+v", d, n, evs)
	}
	if err := g.st.Update(ctx, func(tx *store.Tx) error { _, err := tx.RequeueHubSetAside([]int64{qb}, false); return err }); err != nil {
		t.Fatal(err)
	}
	if d, _, n := g.delivery(t, b); d.State != store.Queued || n != 1 {
		t.Errorf("b, put back: %+v, %d copies", d, n)
	}
	// c cancelled: its copy leaves the queue.
	if _, err := g.router.Cancel(ctx, c, "test"); err != nil {
		t.Fatal(err)
	}
	if d, _, n := g.delivery(t, c); d.State != store.Cancelled || n != 0 {
		t.Errorf("c, cancelled: %+v, %d copies", d, n)
	}
	// Everything too old: b expires with its copy.
	if err := g.st.Update(ctx, func(tx *store.Tx) error { _, err := tx.ExpireHub(tx.Now().Add(time.Hour)); return err }); err != nil {
		t.Fatal(err)
	}
	if d, evs, n := g.delivery(t, b); d.State != store.Expired || n != 0 || !historyHas(evs, store.Expired, "hub.max_age") {
		t.Errorf("b, too old: %+v, %d copies, %+v", d, n, evs)
	}
	// b's copy was on its way when it was counted too old, and the hub's
	// PUBACK comes after all: b is sent (a retry would send it twice). A
	// PUBACK for cancelled c's copy, on its way when cancelled, leaves c
	// cancelled.
	db, _, _ := g.delivery(t, b)
	dc, _, _ := g.delivery(t, c)
	if err := g.st.Update(ctx, func(tx *store.Tx) error { return g.hub.acked(tx, []int64{db.ID, dc.ID}) }); err != nil {
		t.Fatal(err)
	}
	if d, evs, _ := g.delivery(t, b); d.State != store.Sent || !historyHas(evs, store.Sent, "after it was counted expired on its way") {
		t.Errorf("b, acknowledged after it expired: %+v, %+v", d, evs)
	}
	if d, _, _ := g.delivery(t, c); d.State != store.Cancelled {
		t.Errorf("c, acknowledged after it was cancelled: %+v", d)
	}
	// A retry of a (failed) queues a new copy.
	if _, err := g.router.Retry(ctx, a, "test"); err != nil {
		t.Fatal(err)
	}
	if d, _, n := g.delivery(t, a); d.State != store.Queued || n != 1 {
		t.Errorf("a, retried: %+v, %d copies", d, n)
	}
	var st store.HubStats
	var ms []store.HubMessage
	g.st.View(ctx, func(tx *store.Tx) (err error) {
		if ms, err = tx.HubBatch(0, 100); err != nil {
			return err
		}
		st, err = tx.HubQueueStats()
		return err
	})
	// The audit log's copies (the sends, the cancel, the retry) wait too.
	ms = slices.DeleteFunc(ms, func(m store.HubMessage) bool { return m.Topic == "outpost/gw1/audit" })
	if len(ms) != 1 || st.Dropped != 1 || st.SetAside != 1 || st.Requeued != 1 {
		t.Errorf("queue: %d messages besides the audit's, %+v", len(ms), st)
	}
}

// A send to "hub" is a message with a delivery to the hub, queued for it
// on sms/in; one that asks to be held (not_before) is refused with the
// reason, and "hub:<client>" too.
func TestSendToHub(t *testing.T) {
	ctx := context.Background()
	g := newGateway(t, Options{URL: "tcp://127.0.0.1:1"})
	id, err := g.router.Submit(ctx, bridge.SendRequest{To: []string{"hub"}, Text: "to the hub", Source: "cli"})
	if err != nil {
		t.Fatal(err)
	}
	d, _, n := g.delivery(t, id)
	if d.State != store.Queued || n != 1 {
		t.Errorf("a send to hub: %+v, %d copies", d, n)
	}
	var ms []store.HubMessage
	g.st.View(ctx, func(tx *store.Tx) (err error) { ms, err = tx.HubBatch(0, 10); return })
	// The send's audit entry goes to the hub too, in the same commit.
	if len(ms) != 2 || ms[0].Topic != "outpost/gw1/audit" || !strings.Contains(string(ms[0].Payload), `"op":"send","target":"`+id+`"`) {
		t.Errorf("the audit copy: %+v", ms)
	}
	ms = slices.DeleteFunc(ms, func(m store.HubMessage) bool { return m.Topic == "outpost/gw1/audit" })
	if len(ms) != 1 || ms[0].Topic != "outpost/gw1/sms/in" || !strings.Contains(string(ms[0].Payload), `"text":"to the hub"`) || ms[0].DeliveryID != d.ID {
		t.Errorf("queued: %+v", ms)
	}
	_, err = g.router.Submit(ctx, bridge.SendRequest{To: []string{"hub"}, Text: "later", Source: "cli", NotBefore: time.Now().Add(time.Hour)})
	if err == nil || !strings.Contains(err.Error(), "cannot be scheduled") {
		t.Errorf("a scheduled send to hub: %v", err)
	}
	_, err = g.router.Submit(ctx, bridge.SendRequest{To: []string{"hub:hq"}, Text: "x", Source: "cli"})
	if err == nil || !strings.Contains(err.Error(), `give "hub" alone`) {
		t.Errorf("a send to hub:hq: %v", err)
	}
}

// A form routed to the hub goes there on xform/<form_id> (the id made one
// topic level), with the form's payload, as a delivery like any message.
func TestFormToHub(t *testing.T) {
	ctx := context.Background()
	g := newGateway(t, Options{URL: "tcp://127.0.0.1:1"})
	xml := "<data id=\"visit/2\"><name>Amina</name></data>"
	m := &store.Message{Peer: "+15555550101", Text: &xml, Source: "sms", FromAddr: "tel:+15555550101", Modem: "m1", Parts: 1,
		FormID: "visit/2", InstanceID: "uuid:1"}
	if err := g.st.Update(ctx, func(tx *store.Tx) error { return g.router.StoreInbound(tx, m, "test") }); err != nil {
		t.Fatal(err)
	}
	d, _, n := g.delivery(t, m.ID)
	var ms []store.HubMessage
	g.st.View(ctx, func(tx *store.Tx) (err error) { ms, err = tx.HubBatch(0, 10); return })
	if d.State != store.Queued || n != 1 || len(ms) != 1 || ms[0].Topic != "outpost/gw1/xform/visit_2" || ms[0].DeliveryID != d.ID {
		t.Fatalf("a form: %+v, %d copies, queued %+v", d, n, ms)
	}
	var v map[string]any
	if err := json.Unmarshal(ms[0].Payload, &v); err != nil || v["form_id"] != "visit/2" || v["instance_id"] != "uuid:1" || v["xml"] != xml || v["id"] != m.ID {
		t.Errorf("the form's payload: %s", ms[0].Payload)
	}
}

// A retry of a delivery whose copy was set aside takes that copy out (it
// queues a new one): a requeue of the old one would send it twice, and
// after a cancel of the new one it would send a cancelled message.
func TestSetAsideCopiesFollowTheirDelivery(t *testing.T) {
	ctx := context.Background()
	g := newGateway(t, Options{URL: "tcp://127.0.0.1:1"})
	setAside := func(id string) int64 {
		t.Helper()
		d, _, _ := g.delivery(t, id)
		var q int64
		err := g.st.Update(ctx, func(tx *store.Tx) error {
			ms, err := tx.HubBatch(0, 100)
			for _, m := range ms {
				if m.DeliveryID == d.ID {
					q = m.ID
				}
			}
			if err != nil || q == 0 {
				return fmt.Errorf("no copy of %s queued: %v", id, err)
			}
			_, err = tx.SetAsideHub(q, "the hub dropped the connection")
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return q
	}
	listed := func() (n int) {
		g.st.View(ctx, func(tx *store.Tx) error { l, err := tx.HubSetAsideLatest(100); n = len(l); return err })
		return n
	}
	a, b := g.inbound(t, "a"), g.inbound(t, "b")
	setAside(a)
	setAside(b)
	if n := listed(); n != 2 {
		t.Fatalf("%d set aside, want 2", n)
	}
	for _, id := range []string{a, b} {
		if _, err := g.router.Retry(ctx, id, "test"); err != nil {
			t.Fatal(err)
		}
	}
	if n := listed(); n != 0 {
		t.Errorf("%d set-aside copies left after a retry of each, want 0", n)
	}
	if _, err := g.router.Cancel(ctx, a, "test"); err != nil {
		t.Fatal(err)
	}
	if d, _, n := g.delivery(t, a); d.State != store.Cancelled || n != 0 {
		t.Errorf("a, cancelled: %+v, %d copies", d, n)
	}
	if d, _, n := g.delivery(t, b); d.State != store.Queued || n != 1 {
		t.Errorf("b, retried: %+v, %d copies", d, n)
	}
}
