package mqtt

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/outpost-sms/outpost/bridge"
	"github.com/outpost-sms/outpost/bridge/hub"
	"github.com/outpost-sms/outpost/bridge/sms"
	"github.com/outpost-sms/outpost/store"
)

// testBroker is the connector on a real SQLite file and a loopback port,
// with the real SMS connector for validation (no modem: nothing is sent)
// and pass-through on field/#. The hub's address refuses connections:
// what is forwarded stays in the queue.
type testBroker struct {
	c    *Connector
	st   *store.Store
	addr string
}

func newTestBroker(t *testing.T, opts Options) *testBroker {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "outpost.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	router := bridge.New(st, nil)
	router.Add(sms.New(router, nil))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := ln.Addr().String()
	ln.Close()
	opts.Listen, opts.Prefix, opts.GatewayID, opts.AllowAnonymous = "127.0.0.1:0", "outpost", "gw1", true
	if _, ok := opts.Hub.Link.(noHubLink); ok {
		opts.Hub.Link = nil
	} else {
		opts.Hub.Link = hub.New(hub.Options{URL: "tcp://" + refused, Base: "outpost/gw1/"}, router)
	}
	opts.Hub.Forward = append(opts.Hub.Forward, Forward{Topic: "field/#", QoS: 1})
	c := New(opts, router)
	router.Add(c)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, router) }()
	<-c.Ready()
	if c.Addr() == "" {
		t.Fatal("broker did not start")
	}
	t.Cleanup(func() {
		cancel()
		<-done
		st.Close()
	})
	return &testBroker{c: c, st: st, addr: c.Addr()}
}

func (b *testBroker) queued(t *testing.T) int64 {
	t.Helper()
	var st store.HubStats
	if err := b.st.View(context.Background(), func(tx *store.Tx) (err error) { st, err = tx.HubQueueStats(); return }); err != nil {
		t.Fatal(err)
	}
	return st.Messages
}

func (b *testBroker) paho(t *testing.T, id string) paho.Client {
	t.Helper()
	c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + b.addr).SetClientID(id).SetAutoReconnect(false))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", id, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(0) })
	return c
}

// raw connects a hand-driven MQTT 3.1.1 client.
func (b *testBroker) raw(t *testing.T, id string) *rawClient {
	t.Helper()
	conn, err := net.Dial("tcp", b.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &rawClient{t: t, conn: conn, r: bufio.NewReader(conn)}
	c.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect},
		Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), Clean: true, ClientIdentifier: id}}, (*packets.Packet).ConnectEncode)
	if typ, _, _ := c.read(); typ != packets.Connack {
		t.Fatalf("packet type %d, want CONNACK", typ)
	}
	return c
}

func (c *rawClient) publish(topic string, payload []byte, qos byte, id uint16) {
	c.t.Helper()
	c.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: qos}, TopicName: topic, Payload: payload, PacketID: id},
		(*packets.Packet).PublishEncode)
}

// nextAck returns the next PUBACK's packet id, skipping publishes.
func (c *rawClient) nextAck() uint16 {
	c.t.Helper()
	for {
		typ, _, rest := c.read()
		if typ == packets.Puback {
			return uint16(rest[0])<<8 | uint16(rest[1])
		}
		if typ != packets.Publish {
			c.t.Fatalf("packet type %d, want PUBACK", typ)
		}
	}
}

// Each PUBACK comes after the message's commit and in the order of the
// publishes, also past the per-client bound on uncommitted messages.
func TestPassThroughAckedInOrderAfterCommit(t *testing.T) {
	b := newTestBroker(t, Options{MaxUncommitted: 8})
	c := b.raw(t, "device")
	const n = 300
	for i := 1; i <= n; i++ {
		c.publish("field/x", []byte(fmt.Sprint(i)), 1, uint16(i))
	}
	for i := 1; i <= n; i++ {
		id := c.nextAck()
		if id != uint16(i) {
			t.Fatalf("PUBACK %d came where %d was due", id, i)
		}
		if q := b.queued(t); q < int64(i) {
			t.Fatalf("PUBACK %d with only %d messages committed", i, q)
		}
	}
}

// A client that stops reading its socket holds up no one else's PUBACK,
// and its writes time out.
func TestStuckClientDoesNotHoldOthersAcks(t *testing.T) {
	b := newTestBroker(t, Options{WriteTimeout: 2 * time.Second})
	stuck := b.raw(t, "stuck")
	stuck.conn.(*net.TCPConn).SetReadBuffer(4096)
	stuck.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Subscribe, Qos: 1}, PacketID: 1,
		Filters: packets.Subscriptions{{Filter: "field/#", Qos: 0}}}, (*packets.Packet).SubscribeEncode)
	if typ, _, _ := stuck.read(); typ != packets.Suback {
		t.Fatalf("type %d, want SUBACK", typ)
	}
	// Its own messages come back to it, 12 MB it does not read: the
	// socket fills and writes to it block.
	big := make([]byte, 200<<10)
	for i := 1; i <= 60; i++ {
		stuck.publish("field/stuck", big, 1, uint16(i))
	}
	waitUntil(t, "the stuck client's messages to be stored", 10*time.Second, func() bool { return b.queued(t) == 60 })
	other := b.paho(t, "other")
	for i := range 5 {
		tok := other.Publish("field/other", 1, false, fmt.Sprint(i))
		if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("publish %d of another client: no PUBACK in 5 s while one client does not read (%v)", i, tok.Error())
		}
	}
	waitUntil(t, "the stuck client to be disconnected", 20*time.Second, func() bool {
		cl, ok := b.c.server.Clients.Get("stuck")
		return !ok || cl.Closed()
	})
}

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

// QoS 2 on a pass-through topic: PUBREC after the commit, then
// PUBREL/PUBCOMP (a PUBACK is a protocol error for the client).
func TestPassThroughQoS2(t *testing.T) {
	b := newTestBroker(t, Options{})
	c := b.paho(t, "qos2")
	for i := range 3 {
		tok := c.Publish("field/two", 2, false, fmt.Sprint(i))
		if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("QoS 2 publish %d not completed (PUBREC/PUBCOMP): %v", i, tok.Error())
		}
	}
	if q := b.queued(t); q != 3 {
		t.Fatalf("%d messages queued for the hub, want 3", q)
	}
	bin, err := exec.LookPath("mosquitto_pub")
	if err != nil {
		if os.Getenv("OUTPOST_REQUIRE_TOOLS") != "" {
			t.Fatal("mosquitto_pub is not installed (scripts/test.sh installs it)")
		}
		t.Skip("mosquitto_pub is not installed")
	}
	host, port, _ := net.SplitHostPort(b.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-h", host, "-p", port, "-q", "2", "-t", "field/mosq", "-m", "two", "-d").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "PUBCOMP") {
		t.Fatalf("mosquitto_pub -q 2: %v\n%s", err, out)
	}
	if q := b.queued(t); q != 4 {
		t.Fatalf("%d messages queued for the hub, want 4", q)
	}
}

// readCounter counts the PUBLISH packets the broker has read.
type readCounter struct {
	mochi.HookBase
	n atomic.Int64
}

func (h *readCounter) ID() string           { return "read-counter" }
func (h *readCounter) Provides(b byte) bool { return b == mochi.OnPacketRead }
func (h *readCounter) OnPacketRead(cl *mochi.Client, pk packets.Packet) (packets.Packet, error) {
	if pk.FixedHeader.Type == packets.Publish && !cl.Net.Inline {
		h.n.Add(1)
	}
	return pk, nil
}

// sms/send from one client is pipelined: its next requests are read while
// the first one's commit runs, and no PUBACK goes out before the commit.
func TestSendPipelined(t *testing.T) {
	b := newTestBroker(t, Options{})
	reads := new(readCounter)
	b.c.server.AddHook(reads, nil)
	replies := make(chan paho.Message, 100)
	sub := b.paho(t, "app")
	if tok := sub.Subscribe("outpost/gw1/sms/send/reply", 1, func(_ paho.Client, m paho.Message) { replies <- m }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	// Hold the committer.
	release, held := make(chan struct{}), make(chan struct{})
	var once sync.Once
	unhold := func() { once.Do(func() { close(release) }) }
	defer unhold()
	go b.st.Submit(context.Background(), func(*store.Tx) error { close(held); <-release; return nil }, func(error) {})
	<-held
	c := b.raw(t, "sender")
	const n = 20
	for i := 1; i <= n; i++ {
		c.publish("outpost/gw1/sms/send", []byte(fmt.Sprintf(`{"id":"p%d","to":"+15555550100","text":"hi %d"}`, i, i)), 1, uint16(i))
	}
	waitUntil(t, "every request to be read while the first commit waits", 5*time.Second, func() bool { return reads.n.Load() >= n })
	c.conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := c.r.Peek(1); err == nil {
		t.Fatal("a PUBACK before the commit")
	}
	unhold()
	for i := 1; i <= n; i++ {
		if id := c.nextAck(); id != uint16(i) {
			t.Fatalf("PUBACK %d came where %d was due", id, i)
		}
	}
	for i := 1; i <= n; i++ {
		select {
		case m := <-replies:
			var r Reply
			json.Unmarshal(m.Payload(), &r)
			if !r.OK || r.ID != fmt.Sprintf("p%d", i) {
				t.Fatalf("reply %d: %s", i, m.Payload())
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("reply %d missing", i)
		}
	}
}

// Oversized requests and texts are refused before they are parsed or
// encoded, with the reason.
func TestSendSizeCaps(t *testing.T) {
	b := newTestBroker(t, Options{})
	replies := make(chan paho.Message, 10)
	c := b.paho(t, "app")
	if tok := c.Subscribe("outpost/gw1/sms/send/reply", 1, func(_ paho.Client, m paho.Message) { replies <- m }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	for _, tc := range []struct{ payload, want string }{
		{`{"to":"+15555550100","text":"` + strings.Repeat("a", MaxSendText+1) + `"}`, "characters"},
		{`{"to":"+15555550100","text":"` + strings.Repeat("a", MaxSendRequest) + `"}`, "bytes; at most 65536"},
	} {
		if tok := c.Publish("outpost/gw1/sms/send", 1, false, tc.payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
		select {
		case m := <-replies:
			var r Reply
			json.Unmarshal(m.Payload(), &r)
			if r.OK || !strings.Contains(r.Error, tc.want) {
				t.Fatalf("reply %s, want an error with %q", m.Payload(), tc.want)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no reply")
		}
	}
}

// Without max_packet_size set, a packet over DefaultMaxPacketSize is
// refused (the client is disconnected) and nothing of it is stored: one
// is read whole into memory.
func TestDefaultMaxPacketSize(t *testing.T) {
	b := newTestBroker(t, Options{})
	c := b.raw(t, "big")
	c.publish("field/big", make([]byte, DefaultMaxPacketSize+1), 1, 1)
	c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.r.ReadByte(); err == nil {
		t.Fatal("the broker answered a packet over the default size instead of closing the connection")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the connection stayed open after a packet over the default size")
	}
	if q := b.queued(t); q != 0 {
		t.Fatalf("%d messages queued, want 0", q)
	}
	// One within the bound goes through.
	c = b.raw(t, "small")
	c.publish("field/small", make([]byte, DefaultMaxPacketSize-100), 1, 1)
	if id := c.nextAck(); id != 1 {
		t.Fatalf("PUBACK %d, want 1", id)
	}
}

// A commit that fails gets no PUBACK: the client is disconnected and
// sends the message again when it is back.
func TestFailedCommitNoPuback(t *testing.T) {
	b := newTestBroker(t, Options{})
	c := b.raw(t, "device")
	b.st.Close()
	c.publish("field/x", []byte("lost?"), 1, 1)
	c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	typ, err := c.r.ReadByte()
	if err == nil {
		t.Fatalf("got a packet (type %d) for a message that was not stored", typ>>4)
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the client was neither acknowledged nor disconnected")
	}
}

// A subscriber that stops reading is disconnected once a write to it
// times out, also when only mochi's own writer writes to it (others'
// publishes relayed to it: mochi ignores that writer's errors), not
// only when its own PUBACKs are written.
func TestStuckSubscriberDisconnected(t *testing.T) {
	b := newTestBroker(t, Options{WriteTimeout: time.Second})
	stuck := b.raw(t, "stuck-sub")
	stuck.conn.(*net.TCPConn).SetReadBuffer(4096)
	stuck.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Subscribe, Qos: 1}, PacketID: 1,
		Filters: packets.Subscriptions{{Filter: "field/#", Qos: 0}}}, (*packets.Packet).SubscribeEncode)
	if typ, _, _ := stuck.read(); typ != packets.Suback {
		t.Fatalf("type %d, want SUBACK", typ)
	}
	other := b.paho(t, "publisher")
	big := make([]byte, 200<<10)
	for i := range 40 {
		tok := other.Publish("field/big", 1, false, big)
		if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("publish %d: no PUBACK in 5 s while a subscriber does not read (%v)", i, tok.Error())
		}
	}
	waitUntil(t, "the stuck subscriber to be disconnected", 15*time.Second, func() bool {
		cl, ok := b.c.server.Clients.Get("stuck-sub")
		return !ok || cl.Closed()
	})
}

// noHubLink, as Options.Hub.Link of newTestBroker, runs it without a hub
// link (hub.url not set).
type noHubLink struct{ HubLink }

// Without a hub link (hub.url not set), a pass-through topic's messages
// are still committed to the hub queue before their PUBACK, kept for the
// hub a later config names (they were acknowledged and not kept, while
// config check said they were).
func TestForwardWithoutHubLinkKept(t *testing.T) {
	b := newTestBroker(t, Options{Hub: HubOptions{Link: noHubLink{}}})
	c := b.paho(t, "sensor")
	for i := range 3 {
		tok := c.Publish("field/t1", 1, false, fmt.Sprint("reading ", i))
		if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("publish %d: %v", i, tok.Error())
		}
	}
	if q := b.queued(t); q != 3 {
		t.Errorf("%d messages in the hub queue after 3 PUBACKs, want 3", q)
	}
}
