package mqtt

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

// burst encodes publishes of field/x with ids from..to, QoS 1.
func burst(t *testing.T, from, to int) []byte {
	t.Helper()
	var b bytes.Buffer
	for i := from; i <= to; i++ {
		pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}, TopicName: "field/x",
			Payload: []byte(fmt.Sprint(i)), PacketID: uint16(i), ProtocolVersion: 4}
		if err := pk.PublishEncode(&b); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

// A burst of publishes that came in one read is stored in one commit: by
// the first PUBACK, all of it is in the queue (handed to the committer at
// its first publish, the commit would hold that one alone).
func TestBurstStoredInOneCommit(t *testing.T) {
	b := newTestBroker(t, Options{})
	c := b.raw(t, "device")
	for round := 0; round < 3; round++ {
		from := 1 + 50*round
		if _, err := c.conn.Write(burst(t, from, from+49)); err != nil {
			t.Fatal(err)
		}
		for i := from; i <= from+49; i++ {
			id := c.nextAck()
			if id != uint16(i) {
				t.Fatalf("PUBACK %d came where %d was due", id, i)
			}
			if i == from {
				if q := b.queued(t); q != int64(from+49) {
					t.Fatalf("round %d: %d queued at the burst's first PUBACK, want %d", round, q, from+49)
				}
			}
		}
	}
}

// A client refills its window after a write of PUBACKs with its first
// publish alone and the rest a moment later (Nagle holds them until the
// first is acknowledged): the refill is still stored in one commit, not
// the first publish alone and then the rest. And a client with nothing
// more to send gets its last publish answered after Options.RefillWait.
func TestRefillStoredInOneCommit(t *testing.T) {
	const refillWait = time.Second // the gap below is well within it, even under -race
	b := newTestBroker(t, Options{RefillWait: refillWait})
	c := b.raw(t, "device")
	// The first burst shows the client's window: 20.
	if _, err := c.conn.Write(burst(t, 1, 20)); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 20; i++ {
		if id := c.nextAck(); id != uint16(i) {
			t.Fatalf("PUBACK %d came where %d was due", id, i)
		}
	}
	if _, err := c.conn.Write(burst(t, 21, 21)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // the client's second segment comes later
	if _, err := c.conn.Write(burst(t, 22, 40)); err != nil {
		t.Fatal(err)
	}
	if id := c.nextAck(); id != 21 {
		t.Fatalf("PUBACK %d came where 21 was due", id)
	}
	if q := b.queued(t); q != 40 {
		t.Fatalf("%d queued at the refill's first PUBACK, want 40 (stored in one commit)", q)
	}
	for i := 22; i <= 40; i++ {
		if id := c.nextAck(); id != uint16(i) {
			t.Fatalf("PUBACK %d came where %d was due", id, i)
		}
	}
	// Nothing more after this one: it waits for the refill no longer
	// than refillWait after the last PUBACKs.
	start := time.Now()
	if _, err := c.conn.Write(burst(t, 41, 41)); err != nil {
		t.Fatal(err)
	}
	if id := c.nextAck(); id != 41 {
		t.Fatalf("PUBACK %d came where 41 was due", id)
	}
	if waited := time.Since(start); waited > refillWait+2*time.Second {
		t.Fatalf("the last publish was answered after %v", waited)
	}
}

// A client whose window shrinks (30 publishes in flight once, 10 at a time
// since) waits for a refill that does not come once: then its window is
// taken to be what it sent, and its next refills are not held.
func TestRefillWindowShrinks(t *testing.T) {
	const refillWait = time.Second
	b := newTestBroker(t, Options{RefillWait: refillWait})
	c := b.raw(t, "device")
	round := func(from, to int) time.Duration {
		t.Helper()
		start := time.Now()
		if _, err := c.conn.Write(burst(t, from, to)); err != nil {
			t.Fatal(err)
		}
		for i := from; i <= to; i++ {
			if id := c.nextAck(); id != uint16(i) {
				t.Fatalf("PUBACK %d came where %d was due", id, i)
			}
		}
		return time.Since(start)
	}
	round(1, 30)
	if d := round(31, 40); d < refillWait/2 {
		t.Logf("the first smaller refill was not held (%v): the client's 30 may have come in parts", d)
	}
	if d := round(41, 50); d >= refillWait/2 {
		t.Errorf("a refill of the client's new window was held %v", d)
	}
}

// A client whose read loop ends on a bad packet right after publishes it
// sent in the same read does not leave them waiting for a read that never
// comes: they are stored (it got no PUBACK, so it may send them again).
func TestPublishBeforeBadPacketStored(t *testing.T) {
	b := newTestBroker(t, Options{})
	c := b.raw(t, "device")
	msg := append(burst(t, 1, 3), 0xf0, 0x00) // 0xf0: no such packet type in 3.1.1
	if _, err := c.conn.Write(msg); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the three publishes stored", 5*time.Second, func() bool { return b.queued(t) == 3 })
}

// fakeConn records each Write, and whether it was closed.
type fakeConn struct {
	net.Conn
	writes [][]byte
	err    error
	closed bool
}

func (f *fakeConn) Close() error {
	f.closed = true
	return nil
}

func (f *fakeConn) Write(b []byte) (int, error) {
	if f.err != nil {
		return 0, f.err
	}
	f.writes = append(f.writes, append([]byte(nil), b...))
	return len(b), nil
}

func (f *fakeConn) SetWriteDeadline(time.Time) error { return nil }

// Writes to a corked connection go out in one at uncork; a failed one's
// error is uncork's and every later write's.
func TestCorkedWrites(t *testing.T) {
	f := &fakeConn{}
	c := &deadlineConn{Conn: f, timeout: time.Second}
	c.Write([]byte("a"))
	c.cork()
	c.Write([]byte("bb"))
	c.Write([]byte("ccc"))
	if len(f.writes) != 1 {
		t.Fatalf("%d writes before uncork, want 1 (the one before cork)", len(f.writes))
	}
	if err := c.uncork(); err != nil {
		t.Fatal(err)
	}
	if len(f.writes) != 2 || string(f.writes[1]) != "bbccc" {
		t.Fatalf("writes %q", f.writes)
	}
	c.Write([]byte("d"))
	if len(f.writes) != 3 {
		t.Fatal("a write after uncork was held")
	}
	// Large: written when the gathered bytes pass maxCorked.
	c.cork()
	c.Write(make([]byte, maxCorked))
	if len(f.writes) != 4 {
		t.Fatal("a corked connection gathered more than maxCorked")
	}
	c.uncork()
	broken := errors.New("broken pipe")
	f.err = broken
	c.cork()
	if _, err := c.Write([]byte("e")); err != nil {
		t.Fatalf("corked write: %v", err)
	}
	if err := c.uncork(); !errors.Is(err, broken) || !f.closed {
		t.Fatalf("uncork: %v (closed: %v)", err, f.closed)
	}
	if _, err := c.Write([]byte("f")); !errors.Is(err, broken) {
		t.Fatalf("write after a failed one: %v", err)
	}
	// nil: not our connection, nothing gathered.
	var none *deadlineConn
	none.cork()
	if err := none.uncork(); err != nil {
		t.Fatal(err)
	}
}

// mochi's warning without a message (a client's connection ended) is a
// debug record that says so; other records pass as they are.
func TestUnnamedWarnings(t *testing.T) {
	for _, level := range []slog.Level{slog.LevelDebug, slog.LevelInfo} {
		var b bytes.Buffer
		log := slog.New(unnamedWarnings{slog.NewTextHandler(&b, &slog.HandlerOptions{Level: level})})
		log.Warn("", "error", "read tcp: use of closed network connection")
		log.Warn("client store quota reached")
		out := b.String()
		if !strings.Contains(out, "client store quota reached") || strings.Contains(out, `msg=""`) {
			t.Errorf("level %v: %s", level, out)
		}
		if got := strings.Contains(out, `level=DEBUG msg="client connection ended" error="read tcp`); got != (level == slog.LevelDebug) {
			t.Errorf("level %v: %s", level, out)
		}
	}
}
