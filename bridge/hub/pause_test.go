package hub

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/outpost-sms/outpost/bridge"
	"github.com/outpost-sms/outpost/store"
)

// TestPausedHubHoldsItsQueue: with the hub paused the link still comes
// up, but nothing of the queue is published: an inbound message's
// delivery stays queued with its copy; on resume it reaches the hub.
func TestPausedHubHoldsItsQueue(t *testing.T) {
	addr, got := startHub(t)
	g := newGateway(t, Options{URL: "tcp://" + addr})
	ctx := bridge.WithCaller(context.Background(), "cli", "user ops")
	if _, err := g.router.Pause(ctx, "hub"); err != nil {
		t.Fatal(err)
	}
	g.run(t)
	id := g.inbound(t, "held back")
	online := false
	deadline := time.After(2 * time.Second) // the link is up long before: ample time to publish the queue
	for wait := true; wait; {
		select {
		case pk := <-got:
			if strings.HasSuffix(pk.TopicName, "/sms/in") || strings.HasSuffix(pk.TopicName, "/audit") {
				t.Fatalf("published while paused: %s %s", pk.TopicName, pk.Payload)
			}
			online = online || strings.HasSuffix(pk.TopicName, "/status")
		case <-deadline:
			wait = false
		}
	}
	if d, _, copies := g.delivery(t, id); !online || d.State != store.Queued || copies != 1 {
		t.Fatalf("paused: link online %v; delivery %s with %d copies, want queued with its copy", online, d.State, copies)
	}
	if _, err := g.router.Resume(ctx, "hub"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the delivery reaches the hub", 10*time.Second, func() bool {
		d, _, _ := g.delivery(t, id)
		return d.State == store.Sent
	})
}
