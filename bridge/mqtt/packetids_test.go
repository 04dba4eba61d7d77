package mqtt

import (
	"bufio"
	"bytes"
	"net"
	"testing"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// rawClient speaks MQTT 3.1.1 by hand, so that the test decides when (and
// whether) a PUBACK goes out.
type rawClient struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

func (c *rawClient) send(pk packets.Packet, encode func(*packets.Packet, *bytes.Buffer) error) {
	c.t.Helper()
	pk.ProtocolVersion = 4
	var b bytes.Buffer
	if err := encode(&pk, &b); err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.conn.Write(b.Bytes()); err != nil {
		c.t.Fatal(err)
	}
}

// read returns the next packet's type, its packet id (when it has one)
// and what follows it.
func (c *rawClient) read() (typ byte, id uint16, rest []byte) {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	h, err := c.r.ReadByte()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	n, mul := 0, 1
	for {
		b, err := c.r.ReadByte()
		if err != nil {
			c.t.Fatal(err)
		}
		n += int(b&127) * mul
		mul *= 128
		if b < 128 {
			break
		}
	}
	body := make([]byte, n)
	if _, err := c.r.Read(body[:0]); err != nil {
		c.t.Fatal(err)
	}
	for got := 0; got < n; {
		k, err := c.r.Read(body[got:])
		if err != nil {
			c.t.Fatal(err)
		}
		got += k
	}
	typ = h >> 4
	switch typ {
	case packets.Suback, packets.Unsuback:
		return typ, uint16(body[0])<<8 | uint16(body[1]), body[2:]
	case packets.Publish:
		tl := int(body[0])<<8 | int(body[1])
		rest = body[2+tl:]
		if h&0x06 != 0 { // QoS > 0
			return typ, uint16(rest[0])<<8 | uint16(rest[1]), rest[2:]
		}
		return typ, 0, rest
	}
	return typ, 0, body
}

// allowAll lets every client in (the test's listener is not on the
// auth hook's list of loopback listeners).
type allowAll struct{ mochi.HookBase }

func (allowAll) ID() string { return "allow-all" }
func (allowAll) Provides(b byte) bool {
	return b == mochi.OnConnectAuthenticate || b == mochi.OnACLCheck
}
func (allowAll) OnConnectAuthenticate(*mochi.Client, packets.Packet) bool { return true }
func (allowAll) OnACLCheck(*mochi.Client, string, bool) bool              { return true }

// TestSubscribeWhileOwnMessageInFlight: a client's SUBSCRIBE (and
// UNSUBSCRIBE) whose packet id equals one of the broker's own unacked
// messages to it is carried out (mochi v2.7.9 alone refuses it with
// 0x91; see packetIDHook).
func TestSubscribeWhileOwnMessageInFlight(t *testing.T) {
	s := mochi.New(&mochi.Options{InlineClient: true})
	s.AddHook(new(allowAll), nil)
	s.AddHook(newPacketIDHook(s, func(*mochi.Client, string, bool) bool { return true }), nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	if err := s.AddListener(listeners.NewTCP(listeners.Config{ID: "t", Address: addr})); err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Publish("a/state", []byte("online"), true, 1)

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := &rawClient{t: t, conn: conn, r: bufio.NewReader(conn)}
	c.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect},
		Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), Clean: true, Keepalive: 30, ClientIdentifier: "raw"}}, (*packets.Packet).ConnectEncode)
	if typ, _, _ := c.read(); typ != packets.Connack {
		t.Fatalf("packet type %d, want CONNACK", typ)
	}
	subscribe := func(filter string) []byte {
		t.Helper()
		c.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Subscribe, Qos: 1}, PacketID: 1,
			Filters: packets.Subscriptions{{Filter: filter, Qos: 1}}}, (*packets.Packet).SubscribeEncode)
		for {
			typ, id, rest := c.read()
			if typ == packets.Suback && id == 1 {
				return rest
			}
		}
	}
	if codes := subscribe("a/#"); !bytes.Equal(codes, []byte{1}) {
		t.Fatalf("first SUBSCRIBE: %v", codes)
	}
	// The retained message comes with the broker's packet id 1; it is
	// not acknowledged, so id 1 stays in flight on the broker's side.
	if typ, id, payload := c.read(); typ != packets.Publish || id != 1 || string(payload) != "online" {
		t.Fatalf("got type %d id %d %q, want the retained PUBLISH with id 1", typ, id, payload)
	}
	// The client's own packet id 1 is free again (SUBACK came): reusing
	// it is what MQTT allows.
	if codes := subscribe("b/#"); !bytes.Equal(codes, []byte{1}) {
		t.Fatalf("SUBSCRIBE with id 1 while the broker's id 1 is in flight: reason codes %v, want [1]", codes)
	}
	s.Publish("b/x", []byte("through"), false, 0)
	if typ, _, payload := c.read(); typ != packets.Publish || string(payload) != "through" {
		t.Fatalf("after subscribing to b/#: type %d %q", typ, payload)
	}
	c.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Unsubscribe, Qos: 1}, PacketID: 1,
		Filters: packets.Subscriptions{{Filter: "b/#"}}}, (*packets.Packet).UnsubscribeEncode)
	if typ, id, _ := c.read(); typ != packets.Unsuback || id != 1 {
		t.Fatalf("type %d id %d, want UNSUBACK 1", typ, id)
	}
	s.Publish("b/y", []byte("after"), false, 0)
	s.Publish("a/z", []byte("marker"), false, 0)
	if typ, _, payload := c.read(); typ != packets.Publish || string(payload) != "marker" {
		t.Fatalf("after unsubscribing from b/#: type %d %q (b/y still delivered?)", typ, payload)
	}
}
