package mqtt

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
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
	cl      *mochi.Client
	conn    *deadlineConn // cl's connection, if it is ours (else nil)
	slots   chan struct{} // one per publish not yet answered
	mu      sync.Mutex
	queue   []*pending
	running bool
}

// run answers the queue's publishes as their commits end. The answers of
// the publishes whose commits have ended go out in one write (a commit
// usually ends several at once): the connection is corked while their
// work runs.
func (p *clientPipe) run() {
	for {
		head := p.head()
		if head == nil {
			return
		}
		<-head.done
		p.conn.cork()
		answered := 0
		for head != nil {
			head.then()
			answered++
			p.mu.Lock()
			p.queue[0] = nil
			p.queue = p.queue[1:]
			p.mu.Unlock()
			<-p.slots
			next := p.peek()
			head = nil
			if next != nil {
				select {
				case <-next.done:
					head = next
				default:
				}
			}
		}
		// Counted before they are written: the client may answer them
		// before uncork returns.
		p.conn.answered(answered)
		if err := p.conn.uncork(); err != nil {
			p.cl.Stop(err)
		}
	}
}

// peek is the queue's first publish, or nil.
func (p *clientPipe) peek() *pending {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.queue) == 0 {
		return nil
	}
	return p.queue[0]
}

// head is the queue's first publish; when there is none the pipe stops
// running (under the lock inOrder starts it with).
func (p *clientPipe) head() *pending {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.queue) == 0 {
		p.running = false
		return nil
	}
	return p.queue[0]
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
		p = &clientPipe{cl: cl, slots: make(chan struct{}, c.opts.MaxUncommitted)}
		p.conn, _ = cl.Net.Conn.(*deadlineConn)
		c.pipes[cl] = p
	}
	c.pipesMu.Unlock()
	select {
	case p.slots <- struct{}{}:
	default:
		// Full: what this client's read loop gathered goes to the
		// committer before the loop waits for its acknowledgements.
		p.conn.flushDrained()
		p.slots <- struct{}{}
	}
	p.conn.received()
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

// unnamedWarnings passes mochi's log records on, but its warning without
// a message (logged for every client whose connection ends, with the
// read error) as a debug record that says what it is: a client hanging
// up is no warning.
type unnamedWarnings struct{ slog.Handler }

func (h unnamedWarnings) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "" && r.Level == slog.LevelWarn {
		if !h.Handler.Enabled(ctx, slog.LevelDebug) {
			return nil
		}
		d := slog.NewRecord(r.Time, slog.LevelDebug, "client connection ended", r.PC)
		r.Attrs(func(a slog.Attr) bool { d.AddAttrs(a); return true })
		return h.Handler.Handle(ctx, d)
	}
	return h.Handler.Handle(ctx, r)
}

func (h unnamedWarnings) WithAttrs(as []slog.Attr) slog.Handler {
	return unnamedWarnings{h.Handler.WithAttrs(as)}
}

func (h unnamedWarnings) WithGroup(name string) slog.Handler {
	return unnamedWarnings{h.Handler.WithGroup(name)}
}

// answeredByPipe is what a hook returns for a publish its client's pipe
// answers: mochi is to do nothing more with it (no PUBACK, no retained
// copy, no delivery: a QoS 0 publish it ignores). Returning
// packets.ErrRejectPacket does the same, but mochi then builds a debug
// log entry with a copy of the whole packet for every publish, logged
// or not (a tenth of the allocations of a device publishing at full
// speed).
func answeredByPipe(pk packets.Packet) packets.Packet {
	pk.Ignore = true
	pk.FixedHeader.Qos = 0
	pk.FixedHeader.Retain = false
	return pk
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
		if !cl.Closed() { // said once, not for each of its pending publishes
			c.log.Warn("acknowledgement not sent; disconnecting the client", "client", cl.ID, "err", err)
		}
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
	// A read loop that ended on a bad packet did not read again: what it
	// gathered goes to the committer now.
	conn, _ := cl.Net.Conn.(*deadlineConn)
	conn.flushDrained()
	h.c.pipesMu.Lock()
	delete(h.c.pipes, cl)
	h.c.pipesMu.Unlock()
}

// deadlineListener gives every connection it accepts a write deadline.
type deadlineListener struct {
	net.Listener
	timeout time.Duration
	refill  time.Duration // see DefaultRefillWait
}

func (l deadlineListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	dc := &deadlineConn{Conn: conn, timeout: l.timeout, refillWait: l.refill}
	if tc, ok := conn.(*net.TCPConn); ok {
		dc.raw, _ = tc.SyscallConn()
	}
	return dc, nil
}

// deadlineConn bounds each write: a client that stops reading its socket
// is disconnected after timeout instead of holding a writer forever.
// mochi sets the keep-alive deadline with SetDeadline; it becomes the read
// deadline only, so it cannot lift the write's.
//
// While it is corked, writes are gathered (up to maxCorked bytes) and go
// out in one when it is uncorked: a client's pipe answers all the
// publishes a commit made durable with one system call, not one each. A
// gathered write's error is uncork's.
type deadlineConn struct {
	net.Conn
	timeout time.Duration
	mu      sync.Mutex
	corked  bool
	buf     []byte
	err     error // of a write while corked
	raw     syscall.RawConn
	onDrain atomic.Pointer[func()] // see whenDrained

	// The refill after a write of acknowledgements (see drained): the
	// publishes that took a place in the client's pipe and those
	// answered, the most that were waiting for an answer at once (the
	// client's window, as seen), when answers were last written
	// (monotonic), and the timer that ends the wait.
	recv, acked, window atomic.Int64
	ackedAt             atomic.Int64
	refill              atomic.Pointer[time.Timer]
	refillWait          time.Duration
}

// DefaultRefillWait bounds how long, after a write of acknowledgements, the
// deferred work waits for the client to fill its window again. A client
// sends its next publishes as soon as the answers free its in-flight
// window (mosquitto_pub refills 20 in about 120 µs on a Pi-class box's
// loopback), but the first one often comes alone, ahead of the others
// (Nagle). Handed to the committer at once, that one is committed alone
// and the rest wait for the next commit: two commits per window instead
// of one (20,000 publishes of one mosquitto_pub took 2,064 commits, 404
// of them of a single message).
const DefaultRefillWait = 500 * time.Microsecond

// answered records a write of acknowledgements for n publishes.
func (c *deadlineConn) answered(n int) {
	if c == nil {
		return
	}
	c.acked.Add(int64(n))
	c.ackedAt.Store(int64(time.Since(epoch)))
}

// received counts a publish that took a place in the client's pipe.
func (c *deadlineConn) received() {
	if c == nil {
		return
	}
	waiting := c.recv.Add(1) - c.acked.Load()
	for w := c.window.Load(); waiting > w && !c.window.CompareAndSwap(w, waiting); w = c.window.Load() {
	}
}

// epoch is the origin of the monotonic times kept as integers.
var epoch = time.Now()

// maxCorked is how much a corked connection gathers before it writes.
const maxCorked = 32 << 10

func (c *deadlineConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	if !c.corked {
		return c.write(b)
	}
	c.buf = append(c.buf, b...)
	if len(c.buf) >= maxCorked {
		c.flush()
	}
	return len(b), nil
}

// write writes b within the timeout. A write that fails closes the
// connection: mochi's own writer (publishes to subscribers) ignores its
// errors, so a client that stopped reading would otherwise stay
// connected, its writes failing, until something of ours wrote to it;
// closed, its read loop ends and the client is disconnected.
func (c *deadlineConn) write(b []byte) (int, error) {
	c.Conn.SetWriteDeadline(time.Now().Add(c.timeout))
	n, err := c.Conn.Write(b)
	if err != nil {
		c.Conn.Close()
	}
	return n, err
}

// flush writes what was gathered; mu is held.
func (c *deadlineConn) flush() {
	if len(c.buf) > 0 && c.err == nil {
		_, c.err = c.write(c.buf)
	}
	c.buf = c.buf[:0]
	if cap(c.buf) > maxCorked*2 {
		c.buf = nil
	}
}

// cork gathers writes until uncork. A nil c is a connection that is not
// ours: nothing is gathered.
func (c *deadlineConn) cork() {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.corked = true
	c.mu.Unlock()
}

// uncork writes what was gathered and reports the first error of the
// writes since cork.
func (c *deadlineConn) uncork() error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = false
	c.flush()
	return c.err
}

func (c *deadlineConn) SetDeadline(t time.Time) error { return c.Conn.SetReadDeadline(t) }

// Read runs the work deferred until the client's read loop has read all
// that the client sent so far (mochi reads through a buffer: Read is
// called when it is empty), before it waits for more; after it, the
// kernel is asked to acknowledge what came at once (quickAck).
func (c *deadlineConn) Read(b []byte) (int, error) {
	c.drained()
	n, err := c.Conn.Read(b)
	if c.raw != nil {
		quickAck(c.raw)
	}
	return n, err
}

// whenDrained defers *f until the client's read loop has drained what it
// received, or the client is gone (*f runs once). A nil c (not our
// connection) runs *f now. (A pointer: the read loop calls it for every
// publish, and a func value stored here would be allocated each time.)
func (c *deadlineConn) whenDrained(f *func()) {
	if c == nil {
		(*f)()
		return
	}
	c.onDrain.Store(f)
}

// drained runs the deferred work, if any, once the read loop has read
// all the client sent: unless, just after a write of acknowledgements,
// the client has not yet filled its window again; then it waits until it
// has, or Options.RefillWait after the write at most (a client with nothing more
// to send pays that much latency on its last publish).
func (c *deadlineConn) drained() {
	if c == nil || c.onDrain.Load() == nil {
		return
	}
	if wait := c.refillLeft(); wait > 0 {
		if c.refill.Load() == nil {
			t := time.AfterFunc(wait, c.refillTimedOut)
			if !c.refill.CompareAndSwap(nil, t) {
				t.Stop()
			}
		}
		return
	}
	c.flushDrained()
}

// refillLeft is how long drained still waits for the client's refill.
func (c *deadlineConn) refillLeft() time.Duration {
	if c.recv.Load()-c.acked.Load() >= c.window.Load() {
		return 0
	}
	return c.refillWait - (time.Since(epoch) - time.Duration(c.ackedAt.Load()))
}

// refillTimedOut ends a wait for a refill that did not fill the window:
// the client's window is taken to be what it sent (a client whose window
// was larger once, or that sends less than its window, would otherwise
// wait RefillWait on every refill), and the deferred work runs.
func (c *deadlineConn) refillTimedOut() {
	if waiting := c.recv.Load() - c.acked.Load(); waiting > 0 {
		c.window.Store(waiting)
	}
	c.flushDrained()
}

// flushDrained runs the deferred work, if any, now.
func (c *deadlineConn) flushDrained() {
	if c == nil {
		return
	}
	if t := c.refill.Swap(nil); t != nil {
		t.Stop()
	}
	if f := c.onDrain.Swap(nil); f != nil {
		(*f)()
	}
}

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
// acknowledges it and publishes it to local subscribers. The write goes
// to the committer once the client's read loop has read all the client
// sent: a device that answers a commit's acknowledgements with a burst of
// publishes gets the whole burst stored in one commit (handed over at the
// first publish, the committer would start on it alone and the rest would
// wait for the next commit: twice the commits, each a round trip).
func (c *Connector) forward(f *forwarded) {
	b := &c.fwd
	b.mu.Lock()
	b.items = append(b.items, f)
	b.mu.Unlock()
	conn, _ := f.cl.Net.Conn.(*deadlineConn)
	conn.whenDrained(&c.submitFn)
}

// submitForwards hands the gathered pass-through messages to the
// committer, unless a write that will take them is queued already.
func (c *Connector) submitForwards() {
	b := &c.fwd
	b.mu.Lock()
	submit := !b.submitted && len(b.items) > 0
	b.submitted = b.submitted || submit
	b.mu.Unlock()
	if !submit {
		return
	}
	var taken []*forwarded
	ran := false
	c.router.Store.Submit(context.Background(), func(tx *store.Tx) (err error) {
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
				c.relay(f.pk)
			})
		}
	})
}

// relay publishes a device's stored publish to the local subscribers (a
// retained one is also kept for later ones). When it is not retained and
// nobody subscribed to its topic there is nothing to do, and mochi's
// publish path (hooks, checks, a second subscriber scan) is skipped: the
// usual case of a device whose messages only go to the hub.
func (c *Connector) relay(pk packets.Packet) {
	if !pk.FixedHeader.Retain {
		s := c.server.Topics.Subscribers(pk.TopicName)
		if len(s.Subscriptions) == 0 && len(s.Shared) == 0 && len(s.InlineSubscriptions) == 0 {
			return
		}
	}
	c.server.Publish(pk.TopicName, pk.Payload, pk.FixedHeader.Retain, pk.FixedHeader.Qos)
}
