package hub

import (
	"bytes"
	"context"
	"net"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/outpost-sms/outpost/store"
)

// holdAcks is a hub that takes publishes and never acknowledges them.
type holdAcks struct {
	mochi.HookBase
	n, bytes atomic.Int64
}

func (h *holdAcks) ID() string           { return "hold-acks" }
func (h *holdAcks) Provides(b byte) bool { return b == mochi.OnPublish }
func (h *holdAcks) OnPublish(cl *mochi.Client, pk packets.Packet) (packets.Packet, error) {
	h.n.Add(1)
	h.bytes.Add(int64(len(pk.Payload)))
	return pk, packets.ErrRejectPacket
}

// The messages sent to the hub and not yet acknowledged are bounded in
// bytes (WindowBytes), not only in number (Window).
func TestUplinkWindowBoundedInBytes(t *testing.T) {
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "outpost.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	payload := bytes.Repeat([]byte("x"), 100<<10)
	err = st.Update(context.Background(), func(tx *store.Tx) error {
		for range 20 {
			if err := tx.EnqueueHub(&store.HubMessage{Topic: "field/x", Payload: payload, QoS: 1}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	hub := mochi.New(nil)
	hub.AddHook(new(allowAll), nil)
	held := new(holdAcks)
	hub.AddHook(held, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := hub.AddListener(listeners.NewNet("hub", ln)); err != nil {
		t.Fatal(err)
	}
	if err := hub.Serve(); err != nil {
		t.Fatal(err)
	}
	defer hub.Close()
	u := NewUplink(Options{URL: "tcp://" + ln.Addr().String(), ClientID: "gw1", Window: 256, WindowBytes: 300 << 10}, st, "", nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); u.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitUntil(t, "the first messages at the hub", 10*time.Second, func() bool { return held.n.Load() >= 3 })
	// What the window allows is out; nothing more comes while none is
	// acknowledged.
	deadline := time.After(time.Second)
	for {
		select {
		case <-deadline:
			return
		case <-time.After(50 * time.Millisecond):
			if n, b := held.n.Load(), held.bytes.Load(); b > 300<<10 {
				t.Fatalf("%d messages (%d bytes) unacknowledged at the hub, want at most 300 KiB", n, b)
			}
		}
	}
}
