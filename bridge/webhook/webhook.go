// Package webhook is the connector that POSTs Outpost's events to HTTP
// receivers configured as [[webhook]]: an inbound SMS (sms.in), a form
// submission (xform) and every state change of a message sent by SMS
// (sms.status). Each event is one delivery (connector "webhook",
// recipient the webhook's name) created in the transaction that stores
// the message or makes the state change, with the JSON body it carries:
// the POST describes the event as it was, and a kill -9 at any point
// loses nothing (a POST whose answer was not recorded is sent again:
// at least once; X-Outpost-Delivery names the event for receivers that
// drop repeats).
//
// A 2xx answer delivers the event. No answer (refused, reset, timed out),
// 408, 429 and 5xx say the receiver is down: the event waits without
// using up attempts, the webhook is tried again with capped backoff (or
// after the Retry-After the receiver gave), and the other webhooks go
// on. Any other answer (a 4xx, a redirect) fails the event at once with
// the status and the start of the answer in its history, unless the
// clock is not set yet (see package clock): then the refusal may be the
// receiver's check of X-Outpost-Timestamp, and the event waits like an
// outage. One webhook's
// events go out in the order they were created: an event waits while an
// earlier one to the same webhook is unfinished.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/outpost-sms/outpost/bridge"
	"github.com/outpost-sms/outpost/store"
	"github.com/outpost-sms/outpost/store/clock"
)

// The events a webhook may subscribe to.
const (
	EventIn     = "sms.in"     // an inbound SMS
	EventStatus = "sms.status" // a state change of a message sent by SMS
	EventForm   = "xform"      // a form submission
	// EventMessage is a message addressed to a webhook (a send request to
	// webhook:<name>): it is not subscribed to, it is sent.
	EventMessage = "message"
)

// Events lists the known events.
var Events = []string{EventIn, EventStatus, EventForm}

// Name is the connector's name, the Connector of every webhook delivery.
const Name = "webhook"

// Headers of every POST.
const (
	HeaderSignature = "X-Outpost-Signature" // "sha256=" + hex HMAC-SHA256(secret, timestamp + "." + body)
	HeaderTimestamp = "X-Outpost-Timestamp" // Unix seconds when the POST went out
	HeaderEvent     = "X-Outpost-Event"     // the event name
	HeaderDelivery  = "X-Outpost-Delivery"  // the delivery's id: the same on a repeat
)

// MaxRetryAfter bounds how long a receiver's Retry-After holds its
// webhook back.
const MaxRetryAfter = time.Hour

// Hook is one configured receiver.
type Hook struct {
	Name    string
	URL     string
	Events  []string
	Secret  string        // signs each POST; empty: not signed
	Timeout time.Duration // one POST, answer included (default 10s)
}

// Options configure the connector.
type Options struct {
	GatewayID string
	Hooks     []Hook
	// ModemNumbers are the modems' own numbers by modem id (the "to" of
	// sms.in).
	ModemNumbers map[string]string
	Log          *slog.Logger
}

type hook struct {
	Hook
	client *http.Client
	events map[string]bool

	mu    sync.Mutex
	fails int // consecutive times the receiver was down
}

// Connector POSTs events to webhooks.
type Connector struct {
	opts   Options
	log    *slog.Logger
	router *bridge.Router
	hooks  map[string]*hook
	order  []*hook
}

// New returns the connector and registers, on router, the functions that
// create a delivery per subscribed webhook with each event.
func New(opts Options, router *bridge.Router) *Connector {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	c := &Connector{opts: opts, log: opts.Log, router: router, hooks: map[string]*hook{}}
	for _, h := range opts.Hooks {
		if h.Timeout <= 0 {
			h.Timeout = 10 * time.Second
		}
		k := &hook{Hook: h, events: map[string]bool{}, client: &http.Client{Timeout: h.Timeout,
			// A redirect is answered like any other refusal: the URL
			// is wrong, and a POST is not re-sent elsewhere.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
		for _, e := range h.Events {
			k.events[e] = true
		}
		c.hooks[h.Name] = k
		c.order = append(c.order, k)
	}
	router.OnInboundTx(c.inbound)
	router.OnStatusTx(c.status)
	return c
}

// Name implements bridge.Connector.
func (c *Connector) Name() string { return Name }

// Run implements bridge.Connector: nothing comes in this way.
func (c *Connector) Run(ctx context.Context, _ *bridge.Router) error {
	<-ctx.Done()
	return nil
}

// envelope is the body of every POST.
type envelope struct {
	Event     string `json:"event"` // first: Deliver reads it back from the start of the body
	GatewayID string `json:"gateway_id"`
	Message   any    `json:"message"`
}

// inbound adds a delivery per webhook subscribed to an inbound message's
// event, in the transaction that stores it.
func (c *Connector) inbound(tx *store.Tx, m *store.Message) error {
	event, msg := EventIn, any(bridge.NewInboundPayload(*m, c.opts.ModemNumbers[m.Modem]))
	if m.FormID != "" {
		event, msg = EventForm, bridge.NewFormPayload(*m)
	}
	return c.add(tx, m.ID, event, msg)
}

// status adds a delivery per webhook subscribed to sms.status with a
// state change of an SMS, in its transaction. The changes of webhook
// deliveries themselves make no events (no loops); one that is finished
// wakes the dispatcher, whose lane then hands over the next event.
func (c *Connector) status(tx *store.Tx, s bridge.StatusChange) error {
	switch s.Connector {
	case "sms":
		return c.add(tx, s.MessageID, EventStatus, s)
	case Name:
		switch s.State {
		case store.Delivered, store.Sent, store.Failed, store.Cancelled, store.Expired:
			tx.AfterCommit(func() { c.router.Wake(Name) })
		}
	}
	return nil
}

func (c *Connector) add(tx *store.Tx, messageID, event string, msg any) error {
	var body []byte
	for _, h := range c.order {
		if !h.events[event] {
			continue
		}
		if body == nil {
			var err error
			if body, err = json.Marshal(envelope{Event: event, GatewayID: c.opts.GatewayID, Message: msg}); err != nil {
				return fmt.Errorf("webhook %s: %w", event, err)
			}
		}
		d := &store.Delivery{MessageID: messageID, Connector: Name, Recipient: h.Name}
		if err := tx.InsertEventDelivery(d, body, fmt.Sprintf("webhook %s: %s event", h.Name, event)); err != nil {
			return err
		}
	}
	if body != nil {
		tx.AfterCommit(func() { c.router.Wake(Name) })
	}
	return nil
}

// Sign is the X-Outpost-Signature of body POSTed with X-Outpost-Timestamp
// ts: "sha256=" and the hex HMAC-SHA256, keyed with the secret, of the
// timestamp's decimal digits, a ".", and the body as sent.
func Sign(secret, ts string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts))
	mac.Write([]byte("."))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Lanes makes each webhook a lane of its own (bridge.Laned): its events
// go one at a time, oldest first, and a slow or unavailable receiver
// holds back only its own events, not the other webhooks'.
func (c *Connector) Lanes() []string {
	names := make([]string, 0, len(c.order))
	for _, h := range c.order {
		names = append(names, h.Name)
	}
	return names
}

// Scheme: the connector delivers to webhook:<name> addresses.
func (c *Connector) Scheme() string { return bridge.SchemeWebhook }

// ValidateAddress refuses, before anything is stored, a webhook name
// that no [[webhook]] has.
func (c *Connector) ValidateAddress(name string) error {
	if c.hooks[name] == nil {
		names := make([]string, 0, len(c.order))
		for _, h := range c.order {
			names = append(names, h.Name)
		}
		return fmt.Errorf("no [[webhook]] named %q (configured: %s)", name, strings.Join(names, ", "))
	}
	return nil
}

// messageBody is the body of a delivery that was created without one: a
// message addressed to the webhook. An inbound one is its sms.in or
// xform event; a sent one (a send request to webhook:<name>) is a
// "message" event with the sm/in shape, "from" its sender's address.
func (c *Connector) messageBody(m store.Message) ([]byte, error) {
	event, msg := EventMessage, any(bridge.NewInboundPayload(m, ""))
	switch {
	case m.FormID != "":
		event, msg = EventForm, bridge.NewFormPayload(m)
	case m.Direction == store.In:
		event, msg = EventIn, bridge.NewInboundPayload(m, c.opts.ModemNumbers[m.Modem])
	}
	return json.Marshal(envelope{Event: event, GatewayID: c.opts.GatewayID, Message: msg})
}

// Deliver implements bridge.Connector: it POSTs one event to its webhook.
func (c *Connector) Deliver(ctx context.Context, m store.Message, d store.Delivery) (bridge.Outcome, error) {
	h := c.hooks[d.Recipient]
	if h == nil {
		return bridge.Outcome{}, bridge.Permanent(fmt.Errorf("no webhook named %q in the config", d.Recipient))
	}
	// Order: each webhook is a lane (Lanes), whose dispatcher hands over
	// its oldest unfinished event alone.
	var body []byte
	err := c.router.Store.View(ctx, func(tx *store.Tx) (err error) { body, err = tx.DeliveryBody(d.ID); return })
	switch {
	case err != nil:
		return bridge.Outcome{}, err
	case body == nil:
		// A message addressed to the webhook itself (a send request to
		// webhook:<name>, or a route): the message is the event.
		if body, err = c.messageBody(m); err != nil {
			return bridge.Outcome{}, bridge.Permanent(err)
		}
	}
	event := eventOf(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(body))
	if err != nil {
		return bridge.Outcome{}, bridge.Permanent(err)
	}
	now := c.router.Store.Now()
	ts := strconv.FormatInt(now.Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "outpost")
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderEvent, event)
	req.Header.Set(HeaderDelivery, strconv.FormatInt(d.ID, 10))
	if h.Secret != "" {
		req.Header.Set(HeaderSignature, Sign(h.Secret, ts, body))
	}
	resp, err := h.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return bridge.Outcome{}, err
		}
		// No answer: the receiver is down, not the event bad.
		return bridge.Outcome{}, c.down(h, fmt.Errorf("POST %s to webhook %s: %w", event, h.Name, errors.Unwrap(err)), 0)
	}
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	said := resp.Status
	if a := strings.TrimSpace(strings.ToValidUTF8(string(answer), "?")); a != "" {
		said += ": " + strconv.Quote(a)
	}
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		h.mu.Lock()
		h.fails = 0
		h.mu.Unlock()
		return bridge.Outcome{State: store.Delivered, Detail: fmt.Sprintf("webhook %s answered %s", h.Name, resp.Status)}, nil
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
		return bridge.Outcome{}, c.down(h, fmt.Errorf("POST %s to webhook %s: %s", event, h.Name, said), retryAfter(resp.Header.Get("Retry-After")))
	case !clock.Sane(now):
		// The clock is not set yet (a box without a real-time clock
		// before NTP): a receiver that refuses stale timestamps refuses
		// every POST, and the event is not to blame.
		return bridge.Outcome{}, c.down(h, fmt.Errorf("POST %s to webhook %s refused: %s; the clock is not set (X-Outpost-Timestamp %s): tried again until it is", event, h.Name, said, ts), 0)
	default:
		return bridge.Outcome{}, bridge.Permanent(fmt.Errorf("POST %s to webhook %s refused: %s", event, h.Name, said))
	}
}

// down counts an outage of h's receiver and returns err marked for the
// dispatcher: try again after the receiver's Retry-After (ra > 0) or the
// webhook's own capped backoff.
func (c *Connector) down(h *hook, err error, ra time.Duration) error {
	h.mu.Lock()
	h.fails++
	n := h.fails
	h.mu.Unlock()
	wait := c.router.RetryMin
	for i := 1; i < n && wait < c.router.RetryMax; i++ {
		wait *= 2
	}
	wait = min(wait, c.router.RetryMax)
	if ra > 0 {
		wait = ra
	}
	c.log.Warn("webhook receiver unavailable", "webhook", h.Name, "err", err, "retry_in", wait.String(), "outages", n)
	return bridge.Unavailable(err, wait)
}

// retryAfter reads a Retry-After header (seconds, or an HTTP date: the
// wall clock is all there is to compare it with), 0 when absent or bad,
// at most MaxRetryAfter.
func retryAfter(v string) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s <= 0 {
			return 0
		}
		d = time.Duration(min(s, int64(MaxRetryAfter/time.Second))) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = time.Until(t)
	}
	return min(max(d, 0), MaxRetryAfter)
}

// eventOf reads the event name back from the start of a body.
func eventOf(body []byte) string {
	rest, ok := bytes.CutPrefix(body, []byte(`{"event":"`))
	if !ok {
		return ""
	}
	name, _, _ := bytes.Cut(rest, []byte(`"`))
	return string(name)
}
