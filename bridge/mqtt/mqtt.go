// Package mqtt is the local MQTT connector: an embedded mochi broker on
// which phones and apps on the LAN send SMS (sms/send, committed in an
// OnPublish hook before the PUBACK) and receive inbound messages (sms/in),
// delivery states (sms/status/<id>) and retained modem status
// (modem/<id>/status), all under <prefix>/<gateway_id>/.
package mqtt

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/outpost-sms/outpost/bridge"
	"github.com/outpost-sms/outpost/store"
)

// Options configure the local broker.
type Options struct {
	Listen         string // host:port; port 0 picks one
	Prefix         string
	GatewayID      string
	AllowAnonymous bool
	Users          []User
	ACL            []ACL
	// TLSListen, when set, is a second listener with TLS (TLSCert and
	// TLSKey are PEM files).
	TLSListen, TLSCert, TLSKey string
	// ModemNumbers are the modems' own numbers by modem id, for the
	// "to" of sms/in.
	ModemNumbers map[string]string
	// WebSocketListen, when set, serves MQTT over WebSocket (path /),
	// for browser apps on the LAN.
	WebSocketListen string
	// MaxClients limits the broker's clients (0: no limit);
	// MaxPacketSize bounds one packet (0: DefaultMaxPacketSize).
	MaxClients    int64
	MaxPacketSize uint32
	// MaxUncommitted bounds one client's publishes waiting for their
	// commit (0: DefaultMaxUncommitted); WriteTimeout bounds one write to
	// a client (0: DefaultWriteTimeout).
	MaxUncommitted int
	WriteTimeout   time.Duration
	// RefillWait bounds how long a client's publishes wait for the rest
	// of its window before their commit (0: DefaultRefillWait).
	RefillWait time.Duration
	Log        *slog.Logger
	// Hub, when its URL is set, is the link to the central hub.
	Hub HubOptions
}

// Connector is the embedded broker and the topic API on it.
type Connector struct {
	opts   Options
	log    *slog.Logger
	server *mochi.Server
	base   string
	ln     net.Listener
	router *bridge.Router
	ready  chan struct{}
	once   sync.Once
	// startErr is why Run failed to start the broker, set before ready
	// is closed.
	startErr error
	uplink   *Uplink
	auth     *authHook

	pipesMu sync.Mutex
	pipes   map[*mochi.Client]*clientPipe
	fwd     forwardBatch
	// submitFn is submitForwards, made once (see whenDrained).
	submitFn func()
}

// DefaultMaxPacketSize bounds an MQTT packet when Options do not: one is
// read whole into memory (a 30 MB publish took the daemon from 22 to
// 235 MB without a bound).
const DefaultMaxPacketSize = 256 << 10

// New creates the broker; Run starts it. The hub is needed by the send
// hook from the first connection on.
func New(opts Options, router *bridge.Router) *Connector {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Hub.ClientID == "" {
		opts.Hub.ClientID = opts.GatewayID
	}
	if opts.MaxPacketSize == 0 {
		opts.MaxPacketSize = DefaultMaxPacketSize
	}
	if opts.MaxUncommitted <= 0 {
		opts.MaxUncommitted = DefaultMaxUncommitted
	}
	if opts.RefillWait <= 0 {
		opts.RefillWait = DefaultRefillWait
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = DefaultWriteTimeout
	}
	c := &Connector{opts: opts, log: opts.Log, base: opts.Prefix + "/" + opts.GatewayID + "/", router: router, ready: make(chan struct{}),
		pipes: map[*mochi.Client]*clientPipe{}}
	c.submitFn = c.submitForwards
	caps := mochi.NewDefaultServerCapabilities()
	if opts.MaxClients > 0 {
		caps.MaximumClients = opts.MaxClients
	}
	caps.MaximumPacketSize = opts.MaxPacketSize
	c.server = mochi.New(&mochi.Options{InlineClient: true, Capabilities: caps, Logger: slog.New(newQuietHandler(opts.Log.Handler(), 10*time.Second)).With("component", "mqtt-broker")})
	c.auth = newAuthHook(opts.AllowAnonymous, opts.Users, opts.ACL, c.base, c.log)
	c.server.AddHook(c.auth, nil)
	c.server.AddHook(newPacketIDHook(c.server, c.auth.OnACLCheck), nil)
	c.server.AddHook(&pipesHook{c: c}, nil)
	c.server.AddHook(&sendHook{c: c}, nil)
	if opts.Hub.URL != "" {
		c.uplink = NewUplink(opts.Hub, router.Store, c.base+"status", opts.Log)
		c.uplink.downTopic, c.uplink.downlink = c.base+"sms/send", c.downlink
		c.uplink.report = func(st LinkState) { router.LinkStatus("hub", liveLink{st, c.uplink}) }
		c.uplink.local = c.fromHub
		c.uplink.statsTopic = c.base + "hub/queue"
		c.server.AddHook(&forwardHook{c: c}, nil)
		// A state change and its copy for the hub commit together.
		router.OnStatusTx(c.statusToHub)
	}
	router.OnStatus(c.publishStatus)
	router.OnModemStatus(c.publishModem)
	return c
}

// Name implements bridge.Connector.
func (c *Connector) Name() string { return "mqtt" }

// Topic returns the full topic of an API topic such as "sms/in".
func (c *Connector) Topic(t string) string { return c.base + t }

// Addr is the broker's address once Ready.
func (c *Connector) Addr() string {
	<-c.ready
	if c.ln == nil {
		return ""
	}
	return c.ln.Addr().String()
}

// Ready is closed when the broker accepts connections (or failed to:
// see StartErr).
func (c *Connector) Ready() <-chan struct{} { return c.ready }

// StartErr is, once Ready is closed, why the broker did not start (nil
// when it did).
func (c *Connector) StartErr() error {
	<-c.ready
	return c.startErr
}

// Run implements bridge.Connector: it serves the broker until ctx ends.
func (c *Connector) Run(ctx context.Context, router *bridge.Router) error {
	fail := func(err error) error {
		c.once.Do(func() { c.startErr = err; close(c.ready) })
		return err
	}
	// Without a TCP listener the broker still runs, for the hub link
	// alone (and any TLS or WebSocket listener).
	if c.opts.Listen != "" {
		ln, err := net.Listen("tcp", c.opts.Listen)
		if err != nil {
			return fail(fmt.Errorf("mqtt listen %s: %w", c.opts.Listen, err))
		}
		c.ln = ln
		c.auth.listenerIsLoopback("tcp", ln.Addr())
		if err := c.server.AddListener(listeners.NewNet("tcp", deadlineListener{ln, c.opts.WriteTimeout, c.opts.RefillWait})); err != nil {
			ln.Close()
			return fail(err)
		}
	}
	if c.opts.TLSListen != "" {
		cert, err := tls.LoadX509KeyPair(c.opts.TLSCert, c.opts.TLSKey)
		if err != nil {
			return fail(fmt.Errorf("mqtt TLS certificate: %w", err))
		}
		tln, err := tls.Listen("tcp", c.opts.TLSListen, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
		if err != nil {
			return fail(fmt.Errorf("mqtt TLS listen %s: %w", c.opts.TLSListen, err))
		}
		c.auth.listenerIsLoopback("tls", tln.Addr())
		if err := c.server.AddListener(listeners.NewNet("tls", deadlineListener{tln, c.opts.WriteTimeout, c.opts.RefillWait})); err != nil {
			tln.Close()
			return fail(err)
		}
	}
	if c.opts.WebSocketListen != "" {
		// mochi's WebSocket listener binds its own address; it is a LAN
		// listener, never loopback-only for the anonymous rule.
		c.auth.listenerIsLoopback("ws", nil)
		// mochi binds it in a goroutine and only logs a failure: try
		// the address first so a port in use stops the start.
		probe, err := net.Listen("tcp", c.opts.WebSocketListen)
		if err != nil {
			return fail(fmt.Errorf("mqtt WebSocket listen %s: %w", c.opts.WebSocketListen, err))
		}
		probe.Close()
		if err := c.server.AddListener(listeners.NewWebsocket(listeners.Config{ID: "ws", Address: c.opts.WebSocketListen})); err != nil {
			return fail(fmt.Errorf("mqtt WebSocket listen %s: %w", c.opts.WebSocketListen, err))
		}
	}
	// The gateway's own state, retained for LAN clients as on the hub;
	// before any client can connect: mochi v2.7.9 reads a topic's
	// retained message for a new subscription without the lock its
	// writer holds (a data race the race detector reports).
	c.server.Publish(c.base+"status", []byte("online"), true, 1)
	if err := c.server.Serve(); err != nil {
		return fail(err)
	}
	if c.ln != nil {
		c.log.Info("local MQTT broker listening", "addr", c.ln.Addr().String(), "topics", c.base+"#")
	}
	c.once.Do(func() { close(c.ready) })
	var wg sync.WaitGroup
	if c.uplink != nil {
		wg.Add(1)
		go func() { defer wg.Done(); c.uplink.Run(ctx) }()
	}
	<-ctx.Done()
	wg.Wait()
	c.server.Publish(c.base+"status", []byte("offline"), true, 1)
	return c.server.Close()
}

// Scheme implements bridge.Addressed: "mqtt" names this connector (an
// inbound message routed to it is published on sms/in).
func (c *Connector) Scheme() string { return bridge.SchemeMQTT }

// ValidateAddress implements bridge.AddressValidator: what goes to mqtt is
// published on sms/in for every subscriber, not to one client.
func (c *Connector) ValidateAddress(client string) error {
	if client != "" {
		return errors.New(`messages to mqtt are published on sms/in for every subscriber: give "mqtt" alone, not one client`)
	}
	return nil
}

// Deliver implements bridge.Connector: inbound messages are published on
// sms/in (QoS 1), forms on xform/<form_id>.
func (c *Connector) Deliver(ctx context.Context, m store.Message, d store.Delivery) (bridge.Outcome, error) {
	if m.FormID != "" {
		return c.publish(ctx, "xform/"+topicLevel(m.FormID), bridge.NewFormPayload(m))
	}
	return c.publish(ctx, "sms/in", bridge.NewInboundPayload(m, c.opts.ModemNumbers[m.Modem]))
}

// publish delivers v on an API topic: its copy for the hub is committed
// first (a delivery whose hub copy is not stored is retried), then it is
// published on the local broker.
func (c *Connector) publish(ctx context.Context, apiTopic string, v any) (bridge.Outcome, error) {
	b, _ := json.Marshal(v)
	topic := c.Topic(apiTopic)
	if err := c.sendToHub(ctx, topic, b, false); err != nil {
		return bridge.Outcome{}, fmt.Errorf("queue %s for the hub: %w", topic, err)
	}
	if err := c.server.Publish(topic, b, false, 1); err != nil {
		return bridge.Outcome{}, err
	}
	return bridge.Outcome{State: store.Delivered, Detail: "published on " + topic}, nil
}

// topicLevel makes s one topic level: no separators, no wildcards.
func topicLevel(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '/', '+', '#', 0:
			return '_'
		}
		return r
	}, s)
}

func (c *Connector) publishStatus(s bridge.StatusChange) {
	if s.Connector != "sms" {
		return
	}
	b, _ := json.Marshal(s)
	if err := c.server.Publish(c.Topic("sms/status/"+s.MessageID), b, false, 1); err != nil {
		c.log.Warn("publish status", "msg_id", s.MessageID, "err", err)
	}
}

func (c *Connector) publishModem(id string, st any) {
	b, _ := json.Marshal(st)
	topic := c.Topic("modem/" + id + "/status")
	if err := c.sendToHub(context.Background(), topic, b, true); err != nil {
		c.log.Warn("modem status for the hub not queued", "modem", id, "err", err)
	}
	if err := c.server.Publish(topic, b, true, 1); err != nil {
		c.log.Warn("publish modem status", "modem", id, "err", err)
	}
}

// statusToHub queues a delivery state change for the hub inside the
// transaction that makes it.
func (c *Connector) statusToHub(tx *store.Tx, s bridge.StatusChange) error {
	if s.Connector != "sms" {
		return nil
	}
	b, _ := json.Marshal(s)
	return c.queueForHub(tx, c.Topic("sms/status/"+s.MessageID), b, false)
}

// queueForHub adds one of Outpost's own messages to the hub queue inside
// tx; a retained one replaces what is queued on its topic. It is never
// refused for a full queue (store.HubMessage.Own): with when_full =
// "drop_oldest" the oldest make room as for any message; with "refuse"
// it is queued past the bound, counted and logged. (Refusing it lost it:
// nothing sends it again, and a chatty device kept inbound SMS from ever
// reaching the hub.)
func (c *Connector) queueForHub(tx *store.Tx, topic string, payload []byte, retain bool) error {
	// Our retained topics are states (a modem's status): the latest
	// replaces what the hub has not yet been sent.
	m := store.HubMessage{Topic: topic, Payload: payload, QoS: 1, Retain: retain, Replace: retain, Own: true}
	accepted, dropped, err := tx.EnqueueHubLimited(&m, c.opts.Hub.Limits)
	if errors.Is(err, store.ErrBadTopic) {
		// Never queued: the hub would refuse it in front of the rest.
		// (Ids are validated where they come in; an old one may not be.)
		c.log.Warn("not queued for the hub", "err", err)
		return nil
	}
	if err != nil {
		return err
	}
	c.noteLimits(topic, "outpost", accepted, dropped, m.OverBound)
	tx.AfterCommit(c.uplink.Wake)
	return nil
}

// sendToHub commits queueForHub on its own; without a hub it does
// nothing.
func (c *Connector) sendToHub(ctx context.Context, topic string, payload []byte, retain bool) error {
	if c.uplink == nil {
		return nil
	}
	return c.router.Store.Update(ctx, func(tx *store.Tx) error { return c.queueForHub(tx, topic, payload, retain) })
}

// Reply is what sms/send/reply carries.
type Reply struct {
	ID    string `json:"id,omitempty"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// sendHook commits sms/send requests before the broker acknowledges them.
type sendHook struct {
	mochi.HookBase
	c *Connector
}

func (h *sendHook) ID() string { return "outpost-send" }

func (h *sendHook) Provides(b byte) bool { return b == mochi.OnPublish }

// OnPublish runs on the publishing client's goroutine: it parses the
// request and hands its write to the group committer without waiting
// (see pipeline.go); once it is committed the client's pipe sends the
// PUBACK, the reply, and the request to local subscribers. A request that
// is not committed gets no PUBACK: the client is disconnected and sends
// it again.
func (h *sendHook) OnPublish(cl *mochi.Client, pk packets.Packet) (packets.Packet, error) {
	if pk.TopicName != h.c.Topic("sms/send") || cl.Net.Inline {
		return pk, nil
	}
	c := h.c
	// The reply is published for the client: only where it may publish.
	mayReply := func(topic string) bool { return c.auth.OnACLCheck(cl, topic, true) }
	complete := c.inOrder(cl)
	pk.Payload = append([]byte(nil), pk.Payload...)
	c.submit(pk.Payload, "mqtt", cl.ID, mayReply, func(r Reply, replyTo string, err error) {
		complete(func() {
			if err != nil {
				cl.Stop(err)
				return
			}
			c.ack(cl, pk)
			b, _ := json.Marshal(r)
			if err := c.server.Publish(replyTo, b, false, 1); err != nil {
				c.log.Warn("publish reply", "err", err)
			}
			c.relay(pk)
		})
	})
	return answeredByPipe(pk), nil
}

// MaxSendRequest bounds an sms/send request (bytes of JSON), and
// MaxSendText a text (characters): 255 parts of 153 GSM characters is
// the longest an SMS can be. Both are checked before anything is parsed
// or encoded.
const (
	MaxSendRequest = 64 << 10
	MaxSendText    = 255 * 153
)

// submit parses and stores one send request from source. done gets the
// reply and the topic it goes to, or an error when the request could not
// be committed (the sender must be asked again); a bad request is a
// reply, not an error. done is called on the caller's goroutine for a bad
// request, on the committer otherwise, and must not block.
// mayReply, when set, says whether the sender may have a reply on a
// topic of its choosing ("reply_to").
func (c *Connector) submit(payload []byte, source, client string, mayReply func(topic string) bool, done func(r Reply, replyTo string, err error)) {
	replyTopic := c.Topic("sms/send/reply")
	if len(payload) > MaxSendRequest {
		err := fmt.Errorf("the request is %d bytes; at most %d", len(payload), MaxSendRequest)
		c.log.Info("rejected sms/send", "source", source, "client", client, "err", err)
		done(Reply{Error: err.Error()}, replyTopic, nil)
		return
	}
	req, p, err := bridge.ParseSend(payload, source)
	req.From = "mqtt:" + client // the sender's address
	if source == "hub" {
		req.From = "hub"
	}
	switch {
	case err != nil:
	case utf8.RuneCountInString(req.Text) > MaxSendText:
		err = fmt.Errorf(`"text" has %d characters; an SMS of 255 parts holds at most %d`, utf8.RuneCountInString(req.Text), MaxSendText)
	}
	switch {
	case p.ReplyTo == "":
	case strings.ContainsAny(p.ReplyTo, "+#") || strings.HasPrefix(p.ReplyTo, "$"):
		if err == nil {
			err = fmt.Errorf(`"reply_to" %q: a reply topic may not hold a wildcard or start with "$"`, p.ReplyTo)
		}
	case mayReply != nil && !mayReply(p.ReplyTo):
		if err == nil {
			err = fmt.Errorf(`"reply_to" %q: this client may not publish there (mqtt.acl)`, p.ReplyTo)
		}
	default:
		replyTopic = p.ReplyTo
	}
	if err != nil {
		c.log.Info("rejected sms/send", "source", source, "client", client, "err", err)
		done(Reply{ID: p.ID, Error: err.Error()}, replyTopic, nil)
		return
	}
	c.router.SubmitAsync(context.Background(), req, func(id string, err error) {
		switch {
		case errors.Is(err, bridge.ErrInvalid):
			c.log.Info("rejected sms/send", "source", source, "client", client, "err", err)
			done(Reply{ID: p.ID, Error: strings.TrimPrefix(err.Error(), bridge.ErrInvalid.Error()+": ")}, replyTopic, nil)
		case err != nil:
			c.log.Error("sms/send not stored; not acknowledged", "source", source, "client", client, "err", err)
			done(Reply{}, replyTopic, err)
		default:
			c.log.Info("queued", "msg_id", id, "to", strings.Join(req.To, ","), "source", source, "client", client)
			done(Reply{ID: id, OK: true}, replyTopic, nil)
		}
	})
}

// fromHub publishes on the local broker what the hub sent on a
// [[hub.subscribe]] topic, without the rule's prefix.
func (c *Connector) fromHub(topic string, payload []byte, retain bool, qos byte) {
	for _, f := range c.opts.Hub.Subscribe {
		if rest, ok := strings.CutPrefix(topic, f.Prefix); ok && covers(f.Topic, rest) {
			if err := c.server.Publish(rest, payload, retain, qos); err != nil {
				c.log.Warn("publish from the hub", "topic", rest, "err", err)
			}
			return
		}
	}
}

// downlink takes a send request the hub published: committed before the
// hub gets its PUBACK; the reply goes back to the hub through the queue.
func (c *Connector) downlink(payload []byte) error {
	type outcome struct {
		r       Reply
		replyTo string
		err     error
	}
	ch := make(chan outcome, 1)
	c.submit(payload, "hub", c.opts.Hub.ClientID, nil, func(r Reply, replyTo string, err error) { ch <- outcome{r, replyTo, err} })
	o := <-ch
	r, replyTo, err := o.r, o.replyTo, o.err
	if err != nil {
		return err
	}
	b, _ := json.Marshal(r)
	if err := c.sendToHub(context.Background(), replyTo, b, false); err != nil {
		c.log.Warn("reply to the hub not queued", "err", err)
	}
	return nil
}
