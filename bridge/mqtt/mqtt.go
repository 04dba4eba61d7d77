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
	"slices"
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
	// Hub is what the local broker does for the hub link: the
	// pass-through topics (when Hub.Link is set).
	Hub HubOptions
}

// Connector is the embedded broker and the topic API on it.
type Connector struct {
	opts Options
	log  *slog.Logger
	// quiet logs what happens once per message (a drop, a refusal for
	// a full hub queue) at most once per 10 s for each kind.
	quiet  *slog.Logger
	server *mochi.Server
	base   string
	ln     net.Listener
	router *bridge.Router
	ready  chan struct{}
	once   sync.Once
	// startErr is why Run failed to start the broker, set before ready
	// is closed.
	startErr error
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
	c.quiet = slog.New(bridge.NewQuietHandler(opts.Log.Handler(), 10*time.Second))
	caps := mochi.NewDefaultServerCapabilities()
	if opts.MaxClients > 0 {
		caps.MaximumClients = opts.MaxClients
	}
	caps.MaximumPacketSize = opts.MaxPacketSize
	c.server = mochi.New(&mochi.Options{InlineClient: true, Capabilities: caps, SysTopicResendInterval: sysNever, Logger: slog.New(unnamedWarnings{bridge.NewQuietHandler(opts.Log.Handler(), 10*time.Second)}).With("component", "mqtt-broker")})
	c.auth = newAuthHook(opts.AllowAnonymous, opts.Users, opts.ACL, c.base, c.log)
	c.server.AddHook(c.auth, nil)
	c.server.AddHook(newPacketIDHook(c.server, c.auth.OnACLCheck), nil)
	c.server.AddHook(&pipesHook{c: c}, nil)
	c.server.AddHook(&sendHook{c: c}, nil)
	c.server.AddHook(&adminHook{c: c}, nil) // admin.go: admin/<op> (people, contacts and groups, bans, audit)
	if len(opts.Hub.Forward) > 0 {
		// Without a link (no hub.url) they are kept for the hub a
		// later config names, within the queue's bounds.
		c.server.AddHook(&forwardHook{c: c}, nil)
	}
	router.OnStatus(c.publishStatus)
	router.OnModemStatus(c.publishModem)
	return c
}

// sysNever (seconds) keeps the broker from publishing its $SYS topics
// again. mochi retains twenty of them, republishes them every second
// (reading the runtime's memory statistics, which stops the world), and
// every second copies every retained message to look for expired ones:
// at idle that garbage kept about 5 MB more of the daemon resident
// (scripts/bench.sh's figures: VmRSS 28 MB after four idle minutes, 23
// MB without them). outpost status and the gateway's own retained
// topics tell a LAN client what it needs.
const sysNever = 1 << 30

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
	// Serve retained its $SYS topics once: clear them as a client's
	// empty retained publish would (see sysNever).
	for topic := range c.server.Topics.Retained.GetAll() {
		if strings.HasPrefix(topic, "$SYS/") {
			c.server.Topics.RetainMessage(packets.Packet{TopicName: topic})
		}
	}
	if c.ln != nil {
		c.log.Info("local MQTT broker listening", "addr", c.ln.Addr().String(), "topics", c.base+"#")
	}
	c.once.Do(func() { close(c.ready) })
	<-ctx.Done()
	// Not retained: the broker and its retained messages end with this
	// process, and a retained write here raced a client subscribing at
	// the same moment (mochi's retainPath, above) in a full test run.
	c.server.Publish(c.base+"status", []byte("offline"), false, 1)
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
// sms/in (QoS 1), forms on xform/<form_id>, on the local broker. (Their
// copies for the hub are the hub connector's deliveries: bridge/hub.)
func (c *Connector) Deliver(ctx context.Context, m store.Message, d store.Delivery) (bridge.Outcome, error) {
	if m.FormID != "" {
		return c.publish("xform/"+bridge.TopicLevel(m.FormID), bridge.NewFormPayload(m))
	}
	return c.publish("sms/in", bridge.NewInboundPayload(m, c.opts.ModemNumbers[m.Modem]))
}

// publish delivers v on an API topic of the local broker.
func (c *Connector) publish(apiTopic string, v any) (bridge.Outcome, error) {
	b, _ := json.Marshal(v)
	topic := c.Topic(apiTopic)
	if err := c.server.Publish(topic, b, false, 1); err != nil {
		return bridge.Outcome{}, err
	}
	return bridge.Outcome{State: store.Delivered, Detail: "published on " + topic}, nil
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
	if err := c.server.Publish(topic, b, true, 1); err != nil {
		c.log.Warn("publish modem status", "modem", id, "err", err)
	}
}

// Reply is what sms/send/reply carries: the answer to a send request on
// every API.
type Reply = bridge.SendReply

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
	c.submit(pk.Payload, "mqtt", cl.ID, clientWho(cl), mayReply, func(r Reply, replyTo string, err error) {
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

// submit parses and stores one send request from source (who sent it:
// the audit log's who, which its quota counts). done gets the
// reply and the topic it goes to, or an error when the request could not
// be committed (the sender must be asked again); a bad request is a
// reply, not an error. done is called on the caller's goroutine for a bad
// request, on the committer otherwise, and must not block.
// mayReply, when set, says whether the sender may have a reply on a
// topic of its choosing ("reply_to").
func (c *Connector) submit(payload []byte, source, client, who string, mayReply func(topic string) bool, done func(r Reply, replyTo string, err error)) {
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
	req.By = who // its user and client id: the audit log's who, and its quota's

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
	var notes []string
	if slices.ContainsFunc(req.To, func(a string) bool { return strings.HasPrefix(strings.ToLower(a), "group:") }) {
		notes = c.router.GroupNotes(req.To, req.Channels...) // read here: done runs on the committer
	}
	var skipped []string // numbers over their hourly bound
	req.Notes = &skipped
	c.router.SubmitAsync(context.Background(), req, func(id string, err error) {
		switch {
		case errors.Is(err, bridge.ErrInvalid):
			c.log.Info("rejected sms/send", "source", source, "client", client, "err", err)
			done(Reply{ID: p.ID, Error: strings.TrimPrefix(err.Error(), bridge.ErrInvalid.Error()+": "), RetryAfter: bridge.RetryAfter(err)}, replyTopic, nil)
		case err != nil:
			c.log.Error("sms/send not stored; not acknowledged", "source", source, "client", client, "err", err)
			done(Reply{}, replyTopic, err)
		default:
			c.log.Info("queued", "msg_id", id, "to", strings.Join(req.To, ","), "source", source, "client", client)
			done(Reply{ID: id, OK: true, Notes: append(notes, skipped...)}, replyTopic, nil)
		}
	})
}

// PublishLocal publishes on the local broker (for the hub link: what the
// hub sent on a [[hub.subscribe]] topic).
func (c *Connector) PublishLocal(topic string, payload []byte, retain bool, qos byte) error {
	return c.server.Publish(topic, payload, retain, qos)
}

// TakeSend takes a send request the hub published, as sms/send: it
// returns once the request is committed (or refused) with the reply and
// its topic, or an error when it could not be committed (the hub must
// not get its PUBACK).
func (c *Connector) TakeSend(payload []byte) (replyTopic string, reply []byte, err error) {
	type outcome struct {
		r       Reply
		replyTo string
		err     error
	}
	ch := make(chan outcome, 1)
	c.submit(payload, "hub", "hub", "hub", nil, func(r Reply, replyTo string, err error) { ch <- outcome{r, replyTo, err} })
	o := <-ch
	if o.err != nil {
		return "", nil, o.err
	}
	b, _ := json.Marshal(o.r)
	return o.replyTo, b, nil
}
