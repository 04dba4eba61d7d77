// Package bridge is the router of Outpost: it accepts send requests, stores
// inbound messages and routes them to destinations (one delivery row per
// destination), and runs one dispatcher per connector that claims due
// deliveries, hands them to the connector, and records the outcome or
// retries with capped backoff. It imports only store; connectors live in
// bridge/<name> and import bridge.
//
// Destinations are addresses by scheme (address.go): tel:+… (or a bare
// number), group:<name>, mailto:…, xmpp:…, webhook:<name>, mqtt, hub,
// openrosa. Each connector declares the scheme it delivers to (Addressed)
// and may check its addresses (AddressValidator); a delivery's Connector is
// that connector's name and its Recipient the address within the scheme.
// Every message records where it came from: its channel, its sender's
// address and its kind (store.Message).
//
// Every inbound message goes to its default routes (Routes, FormRoutes)
// and to what the config's [[route]] rules that match it add (Rules,
// routes.go): copies to more addresses, an automatic reply, tags.
package bridge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/outpost-sms/outpost/store"
)

// Connector is one way in and out of Outpost (SMS, MQTT, HTTP, …).
type Connector interface {
	Name() string
	// Run brings messages in until ctx ends.
	Run(ctx context.Context, r *Router) error
	// Deliver sends one message to one destination. Wrap the error with
	// Permanent to stop retries. An error does not prove nothing was sent.
	Deliver(ctx context.Context, m store.Message, d store.Delivery) (Outcome, error)
}

// Waiter is implemented by connectors that can be unavailable as a whole
// (no modem ready, link down). The dispatcher claims nothing while it is:
// waiting for the destination to come back is not a failed attempt, so a
// modem unplugged for a day does not use up a message's attempts.
type Waiter interface {
	// WaitReady returns when the connector can deliver, or ctx's error.
	WaitReady(ctx context.Context) error
}

// Queuer is implemented by a connector that queues its deliveries itself
// and records their outcome itself (the hub link: each delivery's copy
// waits in the durable hub queue, and the hub's PUBACK makes it sent). The
// router runs no dispatcher for it, so its Deliver is never called:
// Enqueue runs inside the transaction that creates each of its deliveries
// (an inbound message's route, a send request's recipient) and that
// retries one (Retry), so that the delivery and its copy commit together.
type Queuer interface {
	Enqueue(tx *store.Tx, m *store.Message, d store.Delivery) error
}

// enqueue hands a new delivery to its connector when that queues for
// itself (Queuer).
func (h *Router) enqueue(tx *store.Tx, c Connector, m *store.Message, d store.Delivery) error {
	if q, ok := c.(Queuer); ok {
		return q.Enqueue(tx, m, d)
	}
	return nil
}

// Outcome is what a successful Deliver achieved.
type Outcome struct {
	State  string // store.Sent or store.Delivered
	Detail string
}

// Validator is implemented by connectors that check send requests for
// their destinations before they are stored. Validate gets the request
// with To holding only that connector's recipients (the addresses within
// its scheme: for the SMS connector, the numbers).
type Validator interface {
	Validate(req *SendRequest) error
}

type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent marks an error that retrying cannot fix.
func Permanent(err error) error { return permanent{err} }

// IsPermanent reports whether err was marked Permanent.
func IsPermanent(err error) bool {
	var p permanent
	return errors.As(err, &p)
}

// ErrInvalid marks a bad request (the sender's fault).
var ErrInvalid = errors.New("invalid request")

// ErrConflict marks a request whose "id" is already another message's
// (an inbound one, or a send request that differs): it is also
// ErrInvalid, so every API refuses it with its reason.
var ErrConflict = errors.New("id already used")

type conflictError struct{ msg string }

func (e conflictError) Error() string { return ErrInvalid.Error() + ": " + e.msg }

func (e conflictError) Is(target error) bool { return target == ErrInvalid || target == ErrConflict }

// MaxRecipients bounds the numbers one send request reaches, counted
// after "group:" entries are expanded and repeated numbers merged: a
// larger blast is refused (split it into several requests).
const MaxRecipients = 10000

// MaxIDLen bounds a client's message id.
const MaxIDLen = 64

// CheckID says what is wrong with a client's message id, or nil. An id
// is 1–64 of A–Z, a–z, 0–9, '.', '_', ':' and '-': it names the
// message's status topic (sms/status/<id>), where '/', '+', '#', NUL or
// invalid UTF-8 would make it a topic no broker takes.
func CheckID(id string) error {
	if id == "" || len(id) > MaxIDLen {
		return fmt.Errorf(`"id" must be 1–%d characters, not %d`, MaxIDLen, len(id))
	}
	for i := 0; i < len(id); i++ {
		switch b := id[i]; {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9', b == '.', b == '_', b == ':', b == '-':
		default:
			return fmt.Errorf(`"id" %q: character %q at %d is not allowed (only A–Z, a–z, 0–9, '.', '_', ':', '-')`, id, rune(b), i)
		}
	}
	return nil
}

// checkText refuses the C0 control characters other than line feed,
// carriage return and tab, DEL and the C1 controls (U+0080–U+009F: 0x9B
// is a terminal's CSI; they are what a Windows-1252 text read as Latin-1
// turns into), in a text to send: GSM has no code
// for most of them, and ESC (U+001B) would go out as the alphabet's own
// escape, garbling what follows (a\x1bb arrived as "ab"). Tab, which GSM
// cannot write either, is sent in UCS-2 like any character outside it.
func checkText(text string) error {
	pos := 0
	for _, r := range text {
		pos++
		if (r < 0x20 && r != '\n' && r != '\r' && r != '\t') || (r >= 0x7f && r < 0xa0) {
			return fmt.Errorf(`"text": character %d is U+%04X, a control character: only line feed (\n), carriage return (\r) and tab (\t) are allowed`, pos, r)
		}
	}
	return nil
}

// SendRequest is a request to send one SMS to one or more recipients.
type SendRequest struct {
	ID     string   `json:"id,omitempty"`
	To     []string `json:"to"`
	Text   string   `json:"text,omitempty"`
	Data   []byte   `json:"-"`
	Report bool     `json:"report"`
	Flash  bool     `json:"flash,omitempty"`
	// Source is the channel the request came in on (mqtt, http, cli,
	// hub…), stored as the message's channel; From the sender's address
	// when it has one ("mqtt:<client id>"), stored as its from_addr.
	Source string `json:"-"`
	From   string `json:"-"`
	// By is who asked, for the audit log (the CLI's user, an HTTP
	// caller); empty: From, else Source.
	By string `json:"-"`
	// Port is the application port of Data (0: none).
	Port int `json:"port,omitempty"`
	// Validity is the relative validity period (0: the SMSC's default).
	Validity time.Duration `json:"validity,omitempty"`
	// Priority orders the queue (MinPriority–MaxPriority, higher
	// first; names in priority.go).
	Priority int `json:"priority,omitempty"`
	// NotBefore holds the message (state scheduled) until then; at
	// Expires what is not yet sent is no longer sent (state expired).
	NotBefore time.Time `json:"not_before,omitzero"`
	Expires   time.Time `json:"expires,omitzero"`
	// notBeforeRel and expiresRel say the times were given as durations
	// from now: a retry of the same request gives later times, so they
	// are not compared with a stored message's (sameRequest).
	notBeforeRel, expiresRel bool
	// Channels are the channels a group of contacts is reached on
	// ("sms", "email", "xmpp"; default sms): see expandContactGroup.
	Channels []string `json:"channels,omitempty"`
	// note is added to the history of a request the router makes itself
	// (a route's auto-reply says which route, for which message).
	note string
	// InReplyTo is the id of an inbound message this answers: a send
	// naming a number that opted out goes only when it answers that
	// number's own message (people.go).
	InReplyTo string `json:"in_reply_to,omitempty"`
	// confirmStop marks the confirmation of a STOP, which goes to the
	// number that just opted out.
	confirmStop bool
	// Modem forces the SMS to go out through this modem (one of
	// Router.ModemIDs; stored as the message's modem); empty: the SMS
	// connector chooses (modems.go).
	Modem string `json:"modem,omitempty"`
	// replyModem is the modem of the inbound message a route's
	// auto-reply answers.
	replyModem string
	// Notes, when set, gets what the send left out in the transaction
	// that stored it (numbers over quota.per_number_per_hour), for the
	// reply's notes.
	Notes *[]string `json:"-"`
}

// StatusChange is a delivery state change, published after commit.
type StatusChange struct {
	MessageID string    `json:"id"`
	Connector string    `json:"-"`
	To        string    `json:"to,omitempty"`
	State     string    `json:"state"`
	At        time.Time `json:"at"`
	Detail    string    `json:"detail,omitempty"`
}

// Router routes messages between connectors through the store.
type Router struct {
	Store *store.Store
	Log   *slog.Logger
	// MaxImportRows bounds a contacts import (0: DefaultMaxImportRows).
	MaxImportRows int
	// Routes lists where an inbound message is delivered: connector
	// names ("mqtt") or addresses ("webhook:crm": the connector of the
	// scheme, recipient "crm"); see CheckRoutes.
	Routes []string
	// FormRoutes lists where an inbound form submission (Message.FormID
	// set) is delivered, instead of Routes, in the same form.
	FormRoutes []string
	// Rules are the config's [[route]]s, applied in order to every
	// inbound message besides Routes or FormRoutes (see Route).
	Rules []Route
	// MaxAttempts before a delivery fails (default 10).
	MaxAttempts int
	// RetryMin and RetryMax bound the backoff between attempts.
	RetryMin, RetryMax time.Duration
	// Groups are the recipient lists a send request names as
	// "group:<name>".
	Groups map[string][]string
	// ReplyLimit bounds the routes' automatic replies to one sender:
	// at most ReplyLimit in any ReplyWindow of elapsed time (0: no bound), so
	// that two gateways answering each other stop (routes.go).
	ReplyLimit int
	// ReplyWindow is the elapsed time over which ReplyLimit counts
	// (0: ReplyWindow).
	ReplyWindow time.Duration
	replies     replyLimiter
	// Keywords are the people's keywords (STOP, START, JOIN, LEAVE) by
	// language, the first one the default (people.go).
	Keywords []KeywordSet
	// ModemIDs are the configured modems' ids (stats.go: a modem asked
	// for must be one of them, or have sent something).
	ModemIDs []string
	// ReceiveOnly are the modems configured with send = false: a send
	// request cannot name one.
	ReceiveOnly map[string]bool
	// Quota bounds sends per source and per number, and holds them in
	// the quiet hours (quota.go).
	Quota Quota

	mu           sync.Mutex
	connectors   map[string]Connector
	wake         map[string]chan struct{}
	laneWake     map[string][]chan struct{} // the lanes of a Laned connector
	onStatus     []func(StatusChange)
	onStatusTx   []func(*store.Tx, StatusChange) error
	onInboundTx  []func(*store.Tx, *store.Message) error
	onAuditTx    []func(*store.Tx, store.AuditEntry) error
	onModem      []func(id string, status any)
	onRefused    []func(channel string, err error)
	modems       map[string]any
	links        map[string]any
	expiry       chan struct{}   // a new expiry time to watch
	routing      func() any      // modems.go
	paused       map[string]bool // pause.go
	pausedLoaded bool

	flightMu sync.Mutex
	inflight map[int64]bool // deliveries handed to their connector now
}

// New returns a router on s.
func New(s *store.Store, log *slog.Logger) *Router {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Router{Store: s, Log: log, MaxAttempts: 10, RetryMin: 2 * time.Second, RetryMax: 5 * time.Minute,
		connectors: map[string]Connector{}, wake: map[string]chan struct{}{}, laneWake: map[string][]chan struct{}{}, modems: map[string]any{}, links: map[string]any{},
		expiry: make(chan struct{}, 1), inflight: map[int64]bool{}, paused: map[string]bool{}}
}

// Add registers a connector. Call before Run.
func (h *Router) Add(c Connector) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.connectors[c.Name()] = c
	h.wake[c.Name()] = make(chan struct{}, 1)
}

// OnStatus registers f to be called after every committed delivery state
// change. f must not block.
func (h *Router) OnStatus(f func(StatusChange)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.onStatus = append(h.onStatus, f)
}

// OnStatusTx registers f to run inside the transaction of every delivery
// state change: what f writes commits with the change, or neither does.
func (h *Router) OnStatusTx(f func(*store.Tx, StatusChange) error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.onStatusTx = append(h.onStatusTx, f)
}

// OnInboundTx registers f to run inside the transaction that stores
// every inbound message, after its default deliveries (Routes or
// FormRoutes) were created and before the Rules' ones (which skip a
// destination f already gave it): what f writes (more deliveries, a
// conversation) commits with the message, or neither does.
func (h *Router) OnInboundTx(f func(*store.Tx, *store.Message) error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.onInboundTx = append(h.onInboundTx, f)
}

// OnModemStatus registers f to be called on every modem status change.
func (h *Router) OnModemStatus(f func(id string, status any)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.onModem = append(h.onModem, f)
}

// OnRefused registers f to be called with every send request refused
// for what it asks (ErrInvalid, ErrConflict, ErrOptedOut, ErrQuota),
// with its channel. f must not block.
func (h *Router) OnRefused(f func(channel string, err error)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.onRefused = append(h.onRefused, f)
}

// refused tells the OnRefused functions of err when it refuses a send
// request (a store that failed refuses nothing: the request may come
// again), and returns it.
func (h *Router) refused(channel string, err error) error {
	if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrConflict) && !errors.Is(err, ErrOptedOut) && !errors.Is(err, ErrQuota) {
		return err
	}
	h.mu.Lock()
	fs := append([]func(string, error){}, h.onRefused...)
	h.mu.Unlock()
	for _, f := range fs {
		f(channel, err)
	}
	return err
}

// ModemStatus records and publishes a modem's status.
func (h *Router) ModemStatus(id string, status any) {
	h.mu.Lock()
	h.modems[id] = status
	fs := append([]func(string, any){}, h.onModem...)
	h.mu.Unlock()
	for _, f := range fs {
		f(id, status)
	}
}

// LinkStatus records the state of a link (the hub link, say) for status.
func (h *Router) LinkStatus(name string, status any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.links[name] = status
}

// Links returns the last status of every link, by name.
func (h *Router) Links() map[string]any {
	h.mu.Lock()
	defer h.mu.Unlock()
	return maps.Clone(h.links)
}

// Modems returns the last status of every modem, by id.
func (h *Router) Modems() map[string]any {
	h.mu.Lock()
	defer h.mu.Unlock()
	return maps.Clone(h.modems)
}

func (h *Router) connector(name string) Connector {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.connectors[name]
}

// watchExpiry makes the expiry loop look again for the next expiry: a
// delivery with one is queued or back in the queue.
func (h *Router) watchExpiry() {
	select {
	case h.expiry <- struct{}{}:
	default:
	}
}

// Wake makes a connector's dispatcher look for due deliveries now.
func (h *Router) Wake(connector string) {
	h.mu.Lock()
	chs := append([]chan struct{}{h.wake[connector]}, h.laneWake[connector]...)
	h.mu.Unlock()
	for _, ch := range chs {
		if ch != nil {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
}

// notify runs the OnStatusTx functions inside tx for a state change and
// registers the OnStatus ones to run after its commit.
func (h *Router) notify(tx *store.Tx, d store.Delivery, detail string) error {
	ch := StatusChange{MessageID: d.MessageID, Connector: d.Connector, To: d.Recipient, State: d.State, At: tx.Now(), Detail: detail}
	h.mu.Lock()
	fs := append([]func(StatusChange){}, h.onStatus...)
	txs := append([]func(*store.Tx, StatusChange) error{}, h.onStatusTx...)
	h.mu.Unlock()
	for _, f := range txs {
		if err := f(tx, ch); err != nil {
			return err
		}
	}
	tx.AfterCommit(func() {
		for _, f := range fs {
			f(ch)
		}
	})
	return nil
}

// Transition changes a delivery's state inside tx and publishes the
// change after commit.
func (h *Router) Transition(tx *store.Tx, id int64, t store.Transition) (store.Delivery, error) {
	d, err := tx.SetDeliveryState(id, t)
	if err != nil {
		return d, err
	}
	return d, h.notify(tx, d, t.Summary())
}

// Submit validates and stores a send request (committed before it
// returns) and returns the message id. A request whose id is already
// stored is not stored twice: its id is returned with no error.
func (h *Router) Submit(ctx context.Context, req SendRequest) (string, error) {
	m, write, err := h.prepare(req)
	if err != nil {
		return "", h.refused(req.Source, err)
	}
	id, err := h.stored(m, h.Store.Update(ctx, write))
	return id, h.refused(req.Source, err)
}

// SubmitTx is Submit with f run in the transaction that stores the
// request, after its message and deliveries were written: what f writes
// (an event, a conversation) commits with them, or neither does. f does
// not run for a retry of a request already stored.
func (h *Router) SubmitTx(ctx context.Context, req SendRequest, f func(*store.Tx, *store.Message) error) (string, error) {
	m, write, err := h.prepare(req)
	if err != nil {
		return "", h.refused(req.Source, err)
	}
	id, err := h.stored(m, h.Store.Update(ctx, func(tx *store.Tx) error {
		if err := write(tx); err != nil {
			return err
		}
		return f(tx, m)
	}))
	return id, h.refused(req.Source, err)
}

// SubmitAsync is Submit without waiting for the commit: it validates req
// on the caller's goroutine (a bad request is reported to done at once)
// and hands the write to the store's group committer; done gets the
// outcome once it is durable, on the committer, in the order of the
// calls, and must not block.
func (h *Router) SubmitAsync(ctx context.Context, req SendRequest, done func(id string, err error)) {
	m, write, err := h.prepare(req)
	if err != nil {
		done("", h.refused(req.Source, err))
		return
	}
	h.Store.Submit(ctx, write, func(err error) {
		id, err := h.stored(m, err)
		done(id, h.refused(req.Source, err))
	})
}

// stored is what committing m came to: its id, also when the same
// request with the same id was stored before; ErrConflict when the id is
// another message's.
func (h *Router) stored(m *store.Message, err error) (string, error) {
	switch {
	case errors.Is(err, store.ErrDuplicate):
		return m.ID, nil
	case errors.Is(err, ErrConflict), errors.Is(err, ErrOptedOut), errors.Is(err, ErrQuota):
		return "", err
	case err != nil:
		return "", fmt.Errorf("store message: %w", err)
	}
	return m.ID, nil
}

// prepare validates a send request and returns the message and the
// write that stores it: every recipient is parsed (ParseAddress), groups
// are expanded, each address goes to the connector of its scheme (which
// checks it, and the request with its own recipients); an address no
// connector delivers to refuses the whole request before anything is
// stored. One delivery per recipient.
func (h *Router) prepare(req SendRequest) (*store.Message, func(*store.Tx) error, error) {
	if req.ID != "" {
		if err := CheckID(req.ID); err != nil {
			return nil, nil, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
	}
	if len(req.To) == 0 {
		return nil, nil, fmt.Errorf("%w: \"to\" is missing: give a phone number or a list of them", ErrInvalid)
	}
	if err := h.checkModem(req.Modem); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if req.Text == "" && req.Data == nil {
		return nil, nil, fmt.Errorf("%w: \"text\" is empty", ErrInvalid)
	}
	if req.Data == nil {
		if err := checkText(req.Text); err != nil {
			return nil, nil, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
	}
	direct := directRecipients(req.To)
	addrs, groups, err := h.recipients(req.To, req.Channels)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	targets, err := h.resolve(addrs)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: \"to\": %v", ErrInvalid, err)
	}
	req.To = make([]string, len(targets))
	for i, t := range targets {
		req.To[i] = t.addr.Peer()
	}
	now := h.Store.Now()
	switch {
	case req.Priority < MinPriority || req.Priority > MaxPriority:
		return nil, nil, fmt.Errorf("%w: \"priority\" %d: must be %d–%d", ErrInvalid, req.Priority, MinPriority, MaxPriority)
	case !req.Expires.IsZero() && !req.Expires.After(now):
		return nil, nil, fmt.Errorf("%w: \"expires\" %s has already passed", ErrInvalid, req.Expires.Format(time.RFC3339))
	case !req.Expires.IsZero() && !req.NotBefore.IsZero() && !req.Expires.After(req.NotBefore):
		return nil, nil, fmt.Errorf("%w: \"expires\" %s is not after \"not_before\" %s: it could never be sent",
			ErrInvalid, req.Expires.Format(time.RFC3339), req.NotBefore.Format(time.RFC3339))
	}
	// Each connector checks the request with its own recipients (the
	// SMS connector: the numbers, and that the text encodes).
	var conns []Connector
	mine := map[Connector][]string{}
	for _, t := range targets {
		if _, ok := mine[t.conn]; !ok {
			conns = append(conns, t.conn)
		}
		mine[t.conn] = append(mine[t.conn], t.addr.Value)
	}
	for _, c := range conns {
		if v, ok := c.(Validator); ok {
			sub := req
			sub.To = mine[c]
			if err := v.Validate(&sub); err != nil {
				return nil, nil, fmt.Errorf("%w: %v", ErrInvalid, err)
			}
		}
	}
	m := &store.Message{ID: req.ID, Direction: store.Out, Peer: strings.Join(req.To, ","), Report: req.Report, Flash: req.Flash, Source: req.Source,
		Port: req.Port, Validity: req.Validity, Priority: req.Priority, NotBefore: req.NotBefore, ExpiresAt: req.Expires,
		Channel: req.Source, FromAddr: req.From, Modem: req.Modem}
	accepted := "accepted via " + req.Source
	if req.Modem != "" {
		accepted += " (through modem " + req.Modem + ")"
	}
	if req.note != "" {
		accepted += " (" + req.note + ")"
	}
	if req.InReplyTo != "" {
		accepted += " (in reply to " + req.InReplyTo + ")"
	}
	if len(groups) > 0 {
		accepted += " (" + strings.Join(groups, ", ") + ")"
	}
	state, next := store.Queued, time.Time{}
	if req.NotBefore.After(now) {
		state, next = store.Scheduled, req.NotBefore
		accepted += "; scheduled for " + req.NotBefore.UTC().Format(time.RFC3339)
	}
	m.Kind = store.KindText
	if req.Data != nil {
		m.Data, m.Coding, m.Kind = req.Data, "8bit", store.KindData
	} else {
		text := req.Text
		m.Text = &text
	}
	write := func(tx *store.Tx) error {
		if req.ID != "" {
			old, err := tx.Message(req.ID)
			switch {
			case err == nil:
				if why := sameRequest(old, m, req); why != "" {
					return conflictError{fmt.Sprintf("\"id\" %q is already used by %s: give another id", req.ID, why)}
				}
				return store.ErrDuplicate // a retry: the same id back
			case !errors.Is(err, store.ErrNotFound):
				return err
			}
		}
		targets, banned, err := h.applyBans(tx, req, direct, targets)
		if err != nil {
			return err
		}
		targets, skipped, err := h.applyOptOuts(tx, req, direct, targets)
		if err != nil {
			return err
		}
		if err := noneLeft(targets, banned, skipped); err != nil {
			return err
		}
		skipped = append(banned, skipped...)
		if err := tx.InsertMessage(m); err != nil {
			return err
		}
		targets, over, err := h.applyQuota(tx, req, direct, targets, m.ID)
		if err != nil {
			return err
		}
		skipped = append(skipped, over...)
		if err := h.keepReplyModem(tx, req, m.ID); err != nil {
			return err
		}
		if req.Notes != nil {
			*req.Notes = over
		}
		if err := h.auditSend(tx, req, m, skipped); err != nil {
			return err
		}
		for _, s := range skipped {
			if err := tx.AppendEvent(m.ID, 0, "skipped", s); err != nil {
				return err
			}
		}
		for _, t := range targets {
			state, next, accepted := state, next, accepted
			// Held for the end of the quiet hours (quota.go).
			due := tx.Now()
			if next.After(due) {
				due = next
			}
			end, why, err := h.quietHold(tx, req, t, due)
			if err != nil {
				return err
			}
			if !end.IsZero() {
				state, next, accepted = store.Scheduled, end, accepted+"; "+why
			}
			d := &store.Delivery{MessageID: m.ID, Connector: t.conn.Name(), Recipient: t.addr.Value, State: state, NextAt: next,
				Priority: req.Priority, ExpiresAt: req.Expires}
			if err := tx.InsertDelivery(d, accepted); err != nil {
				return err
			}
			if err := h.notify(tx, *d, accepted); err != nil {
				return err
			}
			if err := h.enqueue(tx, t.conn, m, *d); err != nil {
				return err
			}
		}
		tx.AfterCommit(func() {
			for _, c := range conns {
				h.Wake(c.Name())
			}
			if !req.Expires.IsZero() {
				h.watchExpiry()
			}
		})
		return nil
	}
	return m, write, nil
}

// sameRequest compares a stored message with the one a request with its
// id would store: "" when the request is a retry of it, or what differs.
func sameRequest(old store.Message, m *store.Message, req SendRequest) string {
	if old.Direction != store.Out {
		return "an inbound message"
	}
	ms := func(t time.Time) int64 {
		if t.IsZero() {
			return 0
		}
		return t.UnixMilli()
	}
	text := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	switch {
	case old.Peer != m.Peer:
		return fmt.Sprintf("a message to %s", old.Peer)
	case text(old.Text) != text(m.Text) || !bytes.Equal(old.Data, m.Data) || (old.Text == nil) != (m.Text == nil):
		return "a message with another text or data"
	case old.Port != m.Port || old.Validity != m.Validity || old.Report != m.Report || old.Flash != m.Flash || old.Priority != m.Priority || old.Modem != m.Modem:
		return "a message with other options (port, validity, report, flash, priority or modem)"
	case req.notBeforeRel && old.NotBefore.IsZero() != m.NotBefore.IsZero(),
		!req.notBeforeRel && ms(old.NotBefore) != ms(m.NotBefore):
		return "a message with another \"not_before\""
	case req.expiresRel && old.ExpiresAt.IsZero() != m.ExpiresAt.IsZero(),
		!req.expiresRel && ms(old.ExpiresAt) != ms(m.ExpiresAt):
		return "a message with another \"expires\""
	}
	return ""
}

// recipients parses every address of a request, expands "group:<name>"
// entries and drops repeated addresses, keeping the first. It returns the
// addresses and, for the event, which groups were expanded.
func (h *Router) recipients(list []string, channels []string) (to []Address, groups []string, err error) {
	if err := checkChannels(channels); err != nil {
		return nil, nil, err
	}
	seen := map[Address]bool{}
	add := func(a Address) {
		if !seen[a] {
			seen[a] = true
			to = append(to, a)
		}
	}
	for _, n := range list {
		a, err := ParseAddress(n)
		if err != nil {
			return nil, nil, fmt.Errorf("\"to\": %v", err)
		}
		if a.Scheme == SchemeTopic {
			members, note, err := h.topicMembers(a.Value)
			if err != nil {
				return nil, nil, err
			}
			for _, m := range members {
				add(m)
			}
			groups = append(groups, note)
			continue
		}
		if a.Scheme != SchemeGroup {
			add(a)
			continue
		}
		name := a.Value
		members, ok := h.Groups[name]
		if !ok {
			// A group of contacts (outpost group): on the channels asked.
			cas, notes, found, err := h.expandContactGroup(name, channels)
			if err != nil {
				return nil, nil, err
			}
			if found {
				for _, m := range cas {
					add(m)
				}
				groups = append(groups, fmt.Sprintf("group %s: %d addresses on %s", name, len(cas), channelList(channels)))
				groups = append(groups, notes...)
				continue
			}
		}
		switch {
		case !ok:
			return nil, nil, fmt.Errorf("unknown group %q (groups are made with outpost group add, or defined in the config's [groups] table)", name)
		case len(channels) > 0 && !slices.Contains(channels, "sms"):
			return nil, nil, fmt.Errorf(`group %q is the config's ([groups]): numbers, sent by SMS, and "channels" does not ask for sms`, name)
		case len(members) == 0:
			return nil, nil, fmt.Errorf("group %q has no members", name)
		}
		mine := map[Address]int{}
		var repeated []string
		for _, n := range members {
			m, err := ParseAddress(n)
			if err == nil && m.Scheme == SchemeGroup {
				err = fmt.Errorf("%s: a group cannot hold a group", n)
			}
			if err != nil {
				return nil, nil, fmt.Errorf("group %q: %v", name, err)
			}
			if mine[m]++; mine[m] == 2 {
				repeated = append(repeated, m.Peer())
			}
			add(m)
		}
		groups = append(groups, groupNote(name, len(mine), repeated))
	}
	if len(to) > MaxRecipients {
		return nil, nil, fmt.Errorf("\"to\" has %d recipients after expanding groups: at most %d in one request (split it into several)", len(to), MaxRecipients)
	}
	return to, groups, nil
}

// groupNote is what a send's history says of a group it expanded: its
// numbers, each counted once, and those it lists more than once (each
// gets one delivery).
func groupNote(name string, numbers int, repeated []string) string {
	note := fmt.Sprintf("group %s: %d numbers", name, numbers)
	if numbers == 1 {
		note = fmt.Sprintf("group %s: 1 number", name)
	}
	if len(repeated) == 0 {
		return note
	}
	list := repeated
	if len(list) > 5 {
		list = append(slices.Clone(list[:5]), fmt.Sprintf("and %d more", len(repeated)-5))
	}
	return note + fmt.Sprintf("; listed more than once, one delivery each: %s", strings.Join(list, ", "))
}

// GroupNotes says, for a send request's "to", what its groups came to
// when one lists a number more than once, and, for a group of contacts,
// the members it cannot reach on a channel asked (the history says the
// same): nothing for groups without either, or a "to" that does not
// expand.
func (h *Router) GroupNotes(to []string, channels ...string) []string {
	_, groups, err := h.recipients(to, channels)
	if err != nil {
		return nil
	}
	var out []string
	for _, g := range groups {
		if strings.Contains(g, "; listed more than once") || strings.Contains(g, " have no ") || strings.Contains(g, " has no ") {
			out = append(out, g)
		}
	}
	return out
}

// StoreInbound stores an inbound message inside tx and creates its
// deliveries to every route (Routes or FormRoutes, then what the Rules
// that match add: copies, an auto-reply, tags). Its channel defaults to its Source and its
// kind to what it holds (form, data or text); set FromAddr ("tel:+…"). A
// duplicate (same dedup key) returns store.ErrDuplicate and creates
// nothing.
func (h *Router) StoreInbound(tx *store.Tx, m *store.Message, detail string) error {
	m.Direction = store.In
	if m.Channel == "" {
		m.Channel = m.Source
	}
	if m.Kind == "" {
		m.Kind = kindOf(m)
	}
	ban, banned, err := h.bannedInbound(tx, m)
	if err != nil {
		return err
	}
	mt := h.match(m)
	if banned {
		// Stored and marked, not routed or answered (bans.go).
		mt = matched{tags: []string{"banned"}}
	}
	m.Tags = mt.tags
	if err := tx.InsertMessage(m); err != nil {
		return err
	}
	if err := tx.AppendEvent(m.ID, 0, "received", detail); err != nil {
		return err
	}
	if banned {
		return tx.AppendEvent(m.ID, 0, "banned", "from "+m.FromAddr+", "+banNote(ban)+": not routed or answered")
	}
	routes := h.Routes
	if m.FormID != "" {
		routes = h.FormRoutes
	}
	for _, r := range routes {
		name, recipient, err := h.route(r)
		if err != nil {
			return err
		}
		d := &store.Delivery{MessageID: m.ID, Connector: name, Recipient: recipient}
		if err := tx.InsertDelivery(d, "routed"); err != nil {
			return err
		}
		if err := h.enqueue(tx, h.connector(name), m, *d); err != nil {
			return err
		}
		tx.AfterCommit(func() { h.Wake(name) })
	}
	h.mu.Lock()
	fs := append([]func(*store.Tx, *store.Message) error{}, h.onInboundTx...)
	h.mu.Unlock()
	for _, f := range fs {
		if err := f(tx, m); err != nil {
			return err
		}
	}
	if err := h.people(tx, m); err != nil {
		return err
	}
	// The routes last: they add no copy of m to a destination it already
	// has (the defaults, a webhook's subscription, a conversation's mail).
	return h.applyRoutes(tx, m, mt)
}

// MessageView is a message with its deliveries and history.
type MessageView struct {
	store.Message
	Text       *string          `json:"text,omitempty"`
	DataHex    string           `json:"data_hex,omitempty"`
	Validity   string           `json:"validity,omitempty"`
	State      string           `json:"state"`
	Deliveries []store.Delivery `json:"deliveries"`
	Events     []store.Event    `json:"events"`
}

// newView is a message as the APIs show it, without its deliveries.
func newView(m store.Message) MessageView {
	v := MessageView{Message: m, Text: m.Text, State: m.State}
	if m.Validity > 0 {
		v.Validity = m.Validity.String()
	}
	if m.Data != nil {
		v.DataHex = fmt.Sprintf("%X", m.Data)
	}
	return v
}

// Message reads a message with its deliveries and history.
func (h *Router) Message(ctx context.Context, id string) (MessageView, error) {
	var v MessageView
	err := h.Store.View(ctx, func(tx *store.Tx) error {
		m, err := tx.Message(id)
		if err != nil {
			return err
		}
		v = newView(m)
		if v.Deliveries, err = tx.Deliveries(id); err != nil {
			return err
		}
		v.Events, err = tx.Events(id)
		return err
	})
	v.State = summarize(v.Message, v.Deliveries)
	return v, err
}

// summarize gives one state for a message: its inbound state, or the
// state its SMS deliveries share (the least advanced when they differ).
func summarize(m store.Message, ds []store.Delivery) string {
	if m.Direction == store.In {
		return m.State
	}
	order := map[string]int{store.Failed: 0, store.Expired: 0, store.Scheduled: 1, store.Queued: 2, store.Sending: 3, store.Sent: 4, store.Delivered: 5}
	state := ""
	for _, d := range ds {
		if d.Connector == "webhook" {
			continue // an event about the message, not a destination of it
		}
		if state == "" || order[d.State] < order[state] {
			state = d.State
		}
	}
	return state
}

// Inbox lists inbound messages, newest first.
func (h *Router) Inbox(ctx context.Context, limit int) ([]MessageView, error) {
	var out []MessageView
	err := h.Store.View(ctx, func(tx *store.Tx) error {
		ms, err := tx.Messages(store.In, limit)
		for _, m := range ms {
			out = append(out, newView(m))
		}
		return err
	})
	return out, err
}

// QueueDepths counts unfinished deliveries per connector and state.
func (h *Router) QueueDepths(ctx context.Context) (map[string]map[string]int, error) {
	var q map[string]map[string]int
	err := h.Store.View(ctx, func(tx *store.Tx) (err error) { q, err = tx.QueueDepths(); return })
	return q, err
}

// Reassembly counts the long messages waiting for their missing parts.
func (h *Router) Reassembly(ctx context.Context) (store.Reassembly, error) {
	var r store.Reassembly
	err := h.Store.View(ctx, func(tx *store.Tx) (err error) { r, err = tx.OpenReassembly(); return })
	return r, err
}

// Run starts every connector and its dispatcher, and returns when ctx
// ends and all of them have stopped, with the first error.
func (h *Router) Run(ctx context.Context) error {
	if err := h.LoadPaused(ctx); err != nil {
		return err
	}
	h.mu.Lock()
	var cs []Connector
	for _, c := range h.connectors {
		cs = append(cs, c)
	}
	h.mu.Unlock()
	sort.Slice(cs, func(i, j int) bool { return cs[i].Name() < cs[j].Name() })
	for _, c := range cs {
		var n int
		err := h.Store.Update(ctx, func(tx *store.Tx) (err error) {
			n, err = tx.RecoverSending(c.Name(), "daemon restarted during delivery; retrying (this part may arrive twice)")
			return err
		})
		if err != nil {
			return fmt.Errorf("recover %s deliveries: %w", c.Name(), err)
		}
		if n > 0 {
			h.Log.Warn("deliveries interrupted by a restart are queued again", "connector", c.Name(), "count", n)
		}
	}
	// When the clock jumps, the store moves the stored times; whoever
	// waits for one of them looks again.
	h.Store.OnJump(func() {
		for _, c := range cs {
			h.Wake(c.Name())
		}
		h.watchExpiry()
	})
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		h.expire(ctx)
	}()
	errs := make(chan error, 2*len(cs))
	for _, c := range cs {
		wg.Add(2)
		go func() {
			defer wg.Done()
			if err := c.Run(ctx, h); err != nil && ctx.Err() == nil {
				h.Log.Error("connector stopped", "connector", c.Name(), "err", err)
				errs <- fmt.Errorf("%s: %w", c.Name(), err)
				cancel()
			}
		}()
		go func() {
			defer wg.Done()
			h.dispatch(ctx, c)
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}
