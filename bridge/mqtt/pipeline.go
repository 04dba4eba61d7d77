package mqtt

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/outpost-sms/outpost/store"
)

// A device's publishes that Outpost stores (sms/send, pass-through) are
// pipelined: the OnPublish hook hands the write to the store's group
// committer and returns, so the client's next publishes are read while
// the commit runs and share it; mochi is told to drop the packet, and
// once the commit is durable the client's own pipe acknowledges it
// (PUBACK, or PUBREC for QoS 2), strictly in the order of the client's
// publishes (MQTT requires it), and publishes it to local subscribers. A
// failed commit gets no acknowledgement: the client is disconnected and
// sends it again. Each client has its own pipe, so one that stops reading
// its socket holds up only its own acknowledgements (and its writes time
// out: Options.WriteTimeout).

// DefaultMaxUncommitted is how many of one client's publishes may wait for
// their commit before its read loop waits too: the back-pressure.
const DefaultMaxUncommitted = 256

// DefaultWriteTimeout bounds one write to a client.
const DefaultWriteTimeout = 10 * time.Second

// pending is one publish waiting for its commit.
type pending struct {
	done chan struct{}
	then func() // set before done is closed
}

// clientPipe runs one client's acknowledgements in order.
type clientPipe struct {
	slots   chan struct{} // one per publish not yet answered
	mu      sync.Mutex
	queue   []*pending
	running bool
}

func (p *clientPipe) run() {
	for {
		p.mu.Lock()
		if len(p.queue) == 0 {
			p.running = false
			p.mu.Unlock()
			return
		}
		head := p.queue[0]
		p.mu.Unlock()
		<-head.done
		head.then()
		p.mu.Lock()
		p.queue[0] = nil
		p.queue = p.queue[1:]
		p.mu.Unlock()
		<-p.slots
	}
}

// inOrder takes a place in cl's pipe for a publish that waits for a
// commit. It blocks cl's read loop while MaxUncommitted of cl's publishes
// wait already. The caller starts the commit and, once its outcome is
// known, calls the returned function with what to do then (it must not
// block; then runs on cl's pipe after the work of cl's earlier publishes).
func (c *Connector) inOrder(cl *mochi.Client) func(then func()) {
	c.pipesMu.Lock()
	p := c.pipes[cl]
	if p == nil {
		p = &clientPipe{slots: make(chan struct{}, c.opts.MaxUncommitted)}
		c.pipes[cl] = p
	}
	c.pipesMu.Unlock()
	p.slots <- struct{}{}
	pe := &pending{done: make(chan struct{})}
	p.mu.Lock()
	p.queue = append(p.queue, pe)
	start := !p.running
	p.running = true
	p.mu.Unlock()
	if start {
		go p.run()
	}
	return func(then func()) {
		pe.then = then
		close(pe.done)
	}
}

// ack acknowledges a device's committed publish: PUBACK for QoS 1; for
// QoS 2 PUBREC, with the exchange recorded as mochi records its own, so
// that mochi answers the client's PUBREL with PUBCOMP (and a resent
// PUBLISH with PUBREC, without storing it twice). A write that fails (or
// times out) disconnects the client.
func (c *Connector) ack(cl *mochi.Client, pk packets.Packet) {
	var ack packets.Packet
	switch pk.FixedHeader.Qos {
	case 0:
		return
	case 1:
		ack = packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: pk.PacketID}
	default:
		ack = packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pubrec}, PacketID: pk.PacketID, Created: time.Now().Unix()}
		cl.State.Inflight.DecreaseReceiveQuota()
		if cl.State.Inflight.Set(ack) {
			atomic.AddInt64(&c.server.Info.Inflight, 1)
		}
	}
	if err := cl.WritePacket(ack); err != nil {
		c.log.Warn("acknowledgement not sent; disconnecting the client", "client", cl.ID, "err", err)
		cl.Stop(err)
	}
}

// pipesHook forgets a client's pipe when it disconnects (a pipe still
// running finishes its queue).
type pipesHook struct {
	mochi.HookBase
	c *Connector
}

func (h *pipesHook) ID() string { return "outpost-pipes" }

func (h *pipesHook) Provides(b byte) bool { return b == mochi.OnDisconnect }

func (h *pipesHook) OnDisconnect(cl *mochi.Client, err error, expire bool) {
	h.c.pipesMu.Lock()
	delete(h.c.pipes, cl)
	h.c.pipesMu.Unlock()
}

// deadlineListener gives every connection it accepts a write deadline.
type deadlineListener struct {
	net.Listener
	timeout time.Duration
}

func (l deadlineListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return deadlineConn{conn, l.timeout}, nil
}

// deadlineConn bounds each write: a client that stops reading its socket
// is disconnected after timeout instead of holding a writer forever.
// mochi sets the keep-alive deadline with SetDeadline; it becomes the read
// deadline only, so it cannot lift the write's.
type deadlineConn struct {
	net.Conn
	timeout time.Duration
}

func (c deadlineConn) Write(b []byte) (int, error) {
	c.Conn.SetWriteDeadline(time.Now().Add(c.timeout))
	return c.Conn.Write(b)
}

func (c deadlineConn) SetDeadline(t time.Time) error { return c.Conn.SetReadDeadline(t) }

// forwarded is a device's pass-through message on its way to the hub
// queue.
type forwarded struct {
	m        store.HubMessage
	cl       *mochi.Client
	pk       packets.Packet
	complete func(then func())
	accepted bool
	dropped  int
}

// forwardBatch gathers the pass-through messages that arrive while a
// write is waiting for the committer: they are stored in that one write
// (one savepoint, not one per message).
type forwardBatch struct {
	mu        sync.Mutex
	items     []*forwarded
	submitted bool // a write that will take items is queued
}

func (b *forwardBatch) take() []*forwarded {
	b.mu.Lock()
	defer b.mu.Unlock()
	items := b.items
	b.items, b.submitted = nil, false
	return items
}

// forward stores f in the hub queue; once committed, f's client pipe
// acknowledges it and publishes it to local subscribers.
func (c *Connector) forward(f *forwarded) {
	b := &c.fwd
	b.mu.Lock()
	b.items = append(b.items, f)
	submit := !b.submitted
	b.submitted = true
	b.mu.Unlock()
	if !submit {
		return
	}
	var taken []*forwarded
	ran := false
	c.hub.Store.Submit(context.Background(), func(tx *store.Tx) (err error) {
		ran, taken = true, b.take()
		ms := make([]*store.HubMessage, len(taken))
		for i, f := range taken {
			ms[i] = &f.m
		}
		accepted, dropped, err := tx.EnqueueHubBatch(ms, c.opts.Hub.Limits)
		for i, f := range taken {
			if err == nil {
				f.accepted, f.dropped = accepted[i], dropped[i]
			}
		}
		return err
	}, func(err error) {
		if !ran { // the write failed before it started
			taken = b.take()
		}
		for _, f := range taken {
			f.complete(func() {
				if !c.enqueued(f.cl, f.pk, f.accepted, f.dropped, err) {
					return
				}
				c.ack(f.cl, f.pk)
				// Now that it is stored, the local subscribers get it too.
				c.server.Publish(f.pk.TopicName, f.pk.Payload, f.pk.FixedHeader.Retain, f.pk.FixedHeader.Qos)
			})
		}
	})
}
