package bridge

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// The same message is logged once per period; the next one says how many
// were held back; other messages pass.
func TestQuietHandler(t *testing.T) {
	var b bytes.Buffer
	now := time.Now()
	h := newQuiet(slog.NewTextHandler(&b, nil), 10*time.Second)
	h.now = func() time.Time { return now }
	log := slog.New(h).With("component", "mqtt-broker")
	for range 1000 {
		log.Warn("client store quota reached", "client", "slow")
	}
	log.Info("another message")
	now = now.Add(11 * time.Second)
	log.Warn("client store quota reached", "client", "slow")
	out := b.String()
	if n := strings.Count(out, "client store quota reached"); n != 2 {
		t.Fatalf("logged %d times, want 2:\n%s", n, out)
	}
	if !strings.Contains(out, "another message") || !strings.Contains(out, "suppressed=999") {
		t.Fatalf("%s", out)
	}
}
