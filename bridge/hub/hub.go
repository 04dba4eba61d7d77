// Package hub is the connector of the central hub: the store-and-forward
// link (an MQTT client, see Uplink) that drains the durable hub queue to
// the hub, takes the hub's sms/send requests (the downlink), and passes
// [[hub.subscribe]] topics on to the local broker.
//
// A message routed to the hub ("hub": by default every inbound SMS and
// form, beside "mqtt"; a [[route]] or a send to it) is a delivery of this
// connector, recipient "". The connector queues for itself (bridge.Queuer):
// the delivery and its copy in the hub queue (sms/in or xform/<form_id>,
// as on the local broker) are written in the transaction that creates the
// delivery, linked (store.HubMessage.DeliveryID), and the router runs no
// dispatcher for it. The delivery stays queued, whatever the link does
// (an outage uses no attempt: there are none), until the hub's PUBACK,
// which deletes the copy and makes the delivery sent ("reached the hub")
// in one transaction. A copy dropped for a full queue or set aside fails
// the delivery, one too old (hub.max_age) expires it, with the reason; a
// cancel or an expiry of the delivery removes the copy.
//
// Outpost's other messages for the hub (sms/status/<id>, modem/<id>/status,
// replies to the hub's requests) and the devices' pass-through topics go
// through the same queue without a delivery: no row of their own (the SD
// card pays for every write).
package hub

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/outpost-sms/outpost/bridge"
	"github.com/outpost-sms/outpost/store"
)

// Local is what the hub link needs of the local MQTT connector.
type Local interface {
	// Ready is closed once the local broker runs (or failed to start).
	Ready() <-chan struct{}
	// PublishLocal publishes on the local broker (what the hub sent on a
	// [[hub.subscribe]] topic).
	PublishLocal(topic string, payload []byte, retain bool, qos byte) error
	// TakeSend stores a send request the hub published, as the local
	// broker's sms/send does, and returns its reply and the reply's
	// topic; an error when it could not be committed (the hub must send
	// it again: it gets no PUBACK).
	TakeSend(payload []byte) (replyTopic string, reply []byte, err error)
}

// Connector is the hub link as a connector of the router.
type Connector struct {
	opts   Options
	log    *slog.Logger
	router *bridge.Router
	uplink *Uplink
	local  Local
	// quiet logs what happens once per message (a drop for a full
	// queue) at most once per 10 s for each kind.
	quiet *slog.Logger
}

// reply is what sms/send/reply carries (as on the local broker).
type reply = bridge.SendReply

// ReachedHub is the history of a delivery the hub acknowledged.
const ReachedHub = "reached the hub (PUBACK)"

// New returns the hub connector on router's store. It queues for the hub
// every delivery state change of an SMS (sms/status/<id>) and every modem
// status (modem/<id>/status), in the transaction of the change where there
// is one. Set Local before Run.
func New(opts Options, router *bridge.Router) *Connector {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	c := &Connector{opts: opts, log: opts.Log, router: router,
		quiet: slog.New(bridge.NewQuietHandler(opts.Log.Handler(), 10*time.Second))}
	c.uplink = NewUplink(opts, router.Store, opts.Base+"status", opts.Log)
	c.uplink.statsTopic = opts.Base + "hub/queue"
	c.uplink.downTopic, c.uplink.downlink = opts.Base+"sms/send", c.downlink
	c.uplink.local = c.fromHub
	c.uplink.report = func(st LinkState) { router.LinkStatus("hub", liveLink{st, c.uplink}) }
	c.uplink.acked = c.acked
	c.uplink.paused = func() bool { return router.Paused(bridge.SchemeHub) }
	if router.Store != nil { // nil for a dry run (config check)
		router.Store.OnHubDelivery(c.copyChanged)
	}
	// A state change and its copy for the hub commit together.
	router.OnStatusTx(c.statusToHub)
	router.OnAuditTx(c.auditToHub) // audit.go
	router.OnModemStatus(c.modemToHub)
	return c
}

// SetLocal gives the connector the local broker. Call before Run.
func (c *Connector) SetLocal(l Local) { c.local = l }

// Wake tells the link the hub queue has grown.
func (c *Connector) Wake() { c.uplink.Wake() }

// Name implements bridge.Connector.
func (c *Connector) Name() string { return bridge.SchemeHub }

// Scheme implements bridge.Addressed: "hub" names this connector.
func (c *Connector) Scheme() string { return bridge.SchemeHub }

// ValidateAddress implements bridge.AddressValidator: a message to the hub
// is published there on sms/in, for whoever subscribes at the hub.
func (c *Connector) ValidateAddress(v string) error {
	if v != "" {
		return errors.New(`messages to hub are published on the hub's sms/in for every subscriber there: give "hub" alone, not one client`)
	}
	return nil
}

// Validate implements bridge.Validator: a message to the hub is queued
// for it at once, so it cannot be held until later.
func (c *Connector) Validate(req *bridge.SendRequest) error {
	if !req.NotBefore.IsZero() {
		return errors.New(`"not_before": a message to hub is queued for the hub at once; it cannot be scheduled`)
	}
	return nil
}

// Run implements bridge.Connector: it keeps the link up and the queue
// draining until ctx ends.
func (c *Connector) Run(ctx context.Context, _ *bridge.Router) error {
	if c.local != nil {
		select {
		case <-c.local.Ready():
		case <-ctx.Done():
			return nil
		}
	}
	return c.uplink.Run(ctx)
}

// Deliver implements bridge.Connector. It is never called: the hub
// connector queues its deliveries itself (Enqueue), and the router runs no
// dispatcher for it.
func (c *Connector) Deliver(context.Context, store.Message, store.Delivery) (bridge.Outcome, error) {
	return bridge.Outcome{}, bridge.Permanent(errors.New("the hub link queues its deliveries itself"))
}

// Enqueue implements bridge.Queuer: inside tx, the delivery's copy goes to
// the hub queue, linked to it: an inbound message or a message sent to
// the hub on <base>sms/in, a form on <base>xform/<form_id>, the payloads
// of the local broker's topics. It is one of Outpost's own messages: never
// refused for a full queue (see store.HubMessage.Own).
func (c *Connector) Enqueue(tx *store.Tx, m *store.Message, d store.Delivery) error {
	msg, err := tx.Message(m.ID) // as stored: what the local broker publishes too
	if err != nil {
		return err
	}
	// A retry: its set-aside copies, if any, would go twice if requeued.
	if err := tx.RemoveSetAsideCopies([]int64{d.ID}); err != nil {
		return err
	}
	var topic string
	var v any
	if msg.FormID != "" {
		topic, v = c.opts.Base+"xform/"+bridge.TopicLevel(msg.FormID), bridge.NewFormPayload(msg)
	} else {
		topic, v = c.opts.Base+"sms/in", bridge.NewInboundPayload(msg, c.opts.ModemNumbers[msg.Modem])
	}
	b, _ := json.Marshal(v)
	hm := store.HubMessage{Topic: topic, Payload: b, QoS: 1, Own: true}
	_, dropped, err := tx.EnqueueHubLimited(&hm, c.opts.Limits)
	if errors.Is(err, store.ErrBadTopic) {
		// Never queued: the hub would refuse it in front of the rest.
		_, err = c.router.Transition(tx, d.ID, store.Transition{State: store.Failed, LastError: err.Error(),
			Detail: "not queued for the hub: " + err.Error()})
		return err
	}
	if err != nil {
		return err
	}
	c.noteLimits(topic, dropped, hm.OverBound)
	if err := tx.LinkHubDelivery(hm.ID, d.ID); err != nil {
		return err
	}
	tx.AfterCommit(c.uplink.Wake)
	return nil
}

// acked records, in the transaction that deletes their copies, that the
// hub acknowledged these deliveries. One no longer queued (cancelled while
// its copy was on its way) keeps its state.
func (c *Connector) acked(tx *store.Tx, ids []int64) error {
	for _, id := range ids {
		d, err := tx.Delivery(id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		detail := ReachedHub
		switch d.State {
		case store.Queued:
		case store.Failed, store.Expired:
			// Dropped for a full queue, or too old, while it was on its
			// way: the hub has it all the same (a retry would send it
			// twice).
			detail = ReachedHub + ", after it was counted " + d.State + " on its way (" + d.LastError + ")"
		default:
			continue // sent already, or cancelled
		}
		if _, err := c.router.Transition(tx, id, store.Transition{State: store.Sent, Detail: detail}); err != nil {
			return err
		}
	}
	return nil
}

// copyChanged is the store's news of a delivery's copy (store.OnHubDelivery):
// it left the queue without reaching the hub (state failed or expired: the
// delivery, still queued, ends so) or came back to it (queued: a failed
// delivery whose set-aside copy was put back waits again).
func (c *Connector) copyChanged(tx *store.Tx, id int64, state, detail string) error {
	d, err := tx.Delivery(id)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	switch {
	case state == store.Queued && d.State != store.Failed, state != store.Queued && d.State != store.Queued:
		return nil
	}
	t := store.Transition{State: state, Detail: detail}
	if state != store.Queued {
		t.LastError = detail
		// The history says why; the link logs the count (expired,
		// dropped, set aside), not a line per message.
		c.log.Debug("message for the hub not sent", "msg_id", d.MessageID, "state", state, "why", detail)
	}
	_, err = c.router.Transition(tx, id, t)
	return err
}

// statusToHub queues a delivery state change of an SMS for the hub inside
// the transaction that makes it (sms/status/<id>, no delivery of its own).
func (c *Connector) statusToHub(tx *store.Tx, s bridge.StatusChange) error {
	if s.Connector != "sms" {
		return nil
	}
	b, _ := json.Marshal(s)
	return c.QueueOwn(tx, c.opts.Base+"sms/status/"+s.MessageID, b, false)
}

// modemToHub queues a modem's status for the hub (retained: it replaces
// the one still queued).
func (c *Connector) modemToHub(id string, st any) {
	b, _ := json.Marshal(st)
	topic := c.opts.Base + "modem/" + id + "/status"
	if err := c.router.Store.Update(context.Background(), func(tx *store.Tx) error { return c.QueueOwn(tx, topic, b, true) }); err != nil {
		c.log.Warn("modem status for the hub not queued", "modem", id, "err", err)
	}
}

// QueueOwn adds one of Outpost's own messages to the hub queue inside tx,
// without a delivery; a retained one replaces what is queued on its
// topic. It is never refused for a full queue (store.HubMessage.Own):
// with when_full = "drop_oldest" the oldest make room as for any message;
// with "refuse" it is queued past the bound, counted and logged.
// (Refusing it lost it: nothing sends it again, and a chatty device kept
// inbound SMS from ever reaching the hub.)
func (c *Connector) QueueOwn(tx *store.Tx, topic string, payload []byte, retain bool) error {
	// Our retained topics are states (a modem's status): the latest
	// replaces what the hub has not yet been sent.
	m := store.HubMessage{Topic: topic, Payload: payload, QoS: 1, Retain: retain, Replace: retain, Own: true}
	_, dropped, err := tx.EnqueueHubLimited(&m, c.opts.Limits)
	if errors.Is(err, store.ErrBadTopic) {
		// Never queued: the hub would refuse it in front of the rest.
		// (Ids are validated where they come in; an old one may not be.)
		c.log.Warn("not queued for the hub", "err", err)
		return nil
	}
	if err != nil {
		return err
	}
	c.noteLimits(topic, dropped, m.OverBound)
	tx.AfterCommit(c.uplink.Wake)
	return nil
}

// noteLimits logs what the hub queue's limits did for one of Outpost's
// own messages: over is queued past the bound.
func (c *Connector) noteLimits(topic string, dropped int, over bool) {
	if dropped > 0 {
		c.quiet.Warn("hub queue full: oldest messages dropped", "count", dropped, "topic", topic)
	}
	if over {
		c.quiet.Warn("hub queue full: Outpost's own message queued past the bound (only devices' messages are refused)", "topic", topic)
	}
}

// downlink takes a send request the hub published: committed before the
// hub gets its PUBACK; the reply goes back to the hub through the queue.
func (c *Connector) downlink(payload []byte) error {
	if c.local == nil {
		return errors.New("no local broker to take the hub's sends")
	}
	replyTo, b, err := c.local.TakeSend(payload)
	if err != nil {
		return err
	}
	if err := c.router.Store.Update(context.Background(), func(tx *store.Tx) error { return c.QueueOwn(tx, replyTo, b, false) }); err != nil {
		c.log.Warn("reply to the hub not queued", "err", err)
	}
	return nil
}

// fromHub publishes on the local broker what the hub sent on a
// [[hub.subscribe]] topic, without the rule's prefix.
func (c *Connector) fromHub(topic string, payload []byte, retain bool, qos byte) {
	if c.local == nil {
		return
	}
	for _, f := range c.opts.Subscribe {
		if rest, ok := strings.CutPrefix(topic, f.Prefix); ok && covers(f.Topic, rest) {
			if err := c.local.PublishLocal(rest, payload, retain, qos); err != nil {
				c.log.Warn("publish from the hub", "topic", rest, "err", err)
			}
			return
		}
	}
}

// covers reports whether the MQTT filter matches topic.
func covers(filter, topic string) bool {
	f, t := strings.Split(filter, "/"), strings.Split(topic, "/")
	for i, p := range f {
		switch {
		case p == "#":
			return true
		case i >= len(t):
			return false
		case p != "+" && p != t[i]:
			return false
		}
	}
	return len(f) == len(t)
}
