package store

import (
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/outpost-sms/outpost/store/clock"
)

// Directions.
const (
	In  = "in"
	Out = "out"
)

// Delivery states (ARCHITECTURE.md invariant 4).
const (
	Scheduled = "scheduled"
	Queued    = "queued"
	Sending   = "sending"
	Sent      = "sent"
	Delivered = "delivered"
	Failed    = "failed"
	Expired   = "expired"
	// Cancelled is final: by a person (outpost cancel), before it was
	// sent. Neither the dispatcher nor the expiry loop touches it.
	Cancelled = "cancelled"
)

// ErrWrongState is returned by Retry and Cancel when no destination of the
// message is in a state the operation applies to.
var ErrWrongState = errors.New("wrong state")

// Inbound message states.
const (
	Complete    = "complete"
	Incomplete  = "incomplete"
	Undecodable = "undecodable"
)

// Message kinds: what a message carries.
const (
	KindText   = "text"
	KindData   = "data"
	KindForm   = "form"
	KindReport = "report"
	// KindCall is a missed call turned into a message: Text says who
	// called.
	KindCall = "call"
)

// Message is one SMS (inbound, after reassembly) or one send request.
type Message struct {
	ID        string  `json:"id"`
	Direction string  `json:"direction"`
	Peer      string  `json:"peer"`
	Modem     string  `json:"modem,omitempty"`
	Text      *string `json:"text,omitempty"`
	Data      []byte  `json:"-"`
	Coding    string  `json:"coding,omitempty"`
	Parts     int     `json:"parts"`
	SMSC      string  `json:"smsc,omitempty"`
	SCTS      string  `json:"scts,omitempty"`
	Report    bool    `json:"report"`
	Flash     bool    `json:"flash,omitempty"`
	Source    string  `json:"source,omitempty"`
	DedupKey  string  `json:"-"`
	State     string  `json:"state,omitempty"`
	Detail    string  `json:"detail,omitempty"`
	// FormID and InstanceID are set on an inbound message that carried a
	// form submission (Coding "xform": Text is the instance XML, Data the
	// payload as it came).
	FormID     string `json:"form_id,omitempty"`
	InstanceID string `json:"instance_id,omitempty"`
	// Port is the destination application port of outbound 8-bit data
	// (0: none); Validity the relative validity period (0: the SMSC's).
	Port     int           `json:"port,omitempty"`
	Validity time.Duration `json:"validity,omitempty"`
	// Priority orders outbound messages (higher first); NotBefore holds
	// one back until then (state scheduled); after ExpiresAt one not yet
	// sent is no longer sent (state expired). Zero: none.
	Priority  int       `json:"priority,omitempty"`
	NotBefore time.Time `json:"not_before,omitzero"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	CreatedAt time.Time `json:"created_at"`
	// Channel is where the message came from (sms, mqtt, http, cli, hub,
	// email, xmpp…), FromAddr its sender's address when known
	// ("tel:+15555550100" for an inbound SMS, "mqtt:<client id>"), and
	// Kind what it carries (KindText, KindData, KindForm, KindReport).
	Channel  string `json:"channel,omitempty"`
	FromAddr string `json:"from_addr,omitempty"`
	Kind     string `json:"kind,omitempty"`
	// Tags are what the routes that matched an inbound message put on
	// it ([[route]] tag), in their order.
	Tags []string `json:"tags,omitempty"`
	// Read and Handled are an inbound message's marks (outpost mark).
	Read    bool `json:"read,omitempty"`
	Handled bool `json:"handled,omitempty"`
}

// Delivery is one message x destination with its latest state.
type Delivery struct {
	ID        int64     `json:"id"`
	MessageID string    `json:"message_id"`
	Connector string    `json:"connector"`
	Recipient string    `json:"recipient,omitempty"`
	State     string    `json:"state"`
	Attempts  int       `json:"attempts"`
	NextAt    time.Time `json:"next_at,omitzero"`
	LastError string    `json:"last_error,omitempty"`
	// Priority and ExpiresAt are the message's, copied when the delivery
	// is created.
	Priority  int       `json:"priority,omitempty"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Event is one entry of a message's history.
type Event struct {
	ID         int64     `json:"-"`
	MessageID  string    `json:"-"`
	DeliveryID int64     `json:"delivery_id,omitempty"`
	At         time.Time `json:"at"`
	State      string    `json:"state"`
	Detail     string    `json:"detail,omitempty"`
}

// InsertMessage stores m, filling ID and CreatedAt when empty. A message
// whose DedupKey is already stored returns ErrDuplicate and the stored id.
func (tx *Tx) InsertMessage(m *Message) error {
	if m.ID == "" {
		m.ID = NewID()
	}
	if m.CreatedAt.IsZero() {
		m.CreatedAt = tx.now
	}
	if m.Parts == 0 {
		m.Parts = 1
	}
	if m.DedupKey != "" {
		var id string
		err := tx.tx.QueryRowContext(tx.ctx, `SELECT id FROM messages WHERE dedup_key = ?`, m.DedupKey).Scan(&id)
		if err == nil {
			m.ID = id
			return ErrDuplicate
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
	}
	var dedup any
	if m.DedupKey != "" {
		dedup = m.DedupKey
	}
	_, err := tx.exec(`INSERT INTO messages (id, direction, peer, modem, text, data, coding, parts, smsc, scts, report, flash, source, dedup_key, state, detail, form_id, instance_id, port, validity_s, priority, not_before, expires_at, created_at, channel, from_addr, kind, tags)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		m.ID, m.Direction, m.Peer, m.Modem, m.Text, m.Data, m.Coding, m.Parts, m.SMSC, m.SCTS, m.Report, m.Flash, m.Source, dedup, m.State, m.Detail, m.FormID, m.InstanceID, m.Port, int64(m.Validity/time.Second),
		m.Priority, ms(m.NotBefore), ms(m.ExpiresAt), ms(m.CreatedAt), m.Channel, m.FromAddr, m.Kind, strings.Join(m.Tags, ","))
	if err != nil {
		return fmt.Errorf("insert message: %w", err)
	}
	tx.hookMessage(m)
	return nil
}

// ReleaseDedupKey ends de-duplication on key. Call it once the source can
// no longer hand the same message up again (its SIM slot was deleted, its
// +CMT acknowledged): a later message with the same bytes, such as the
// same text from the same sender within one second, is then a new one.
func (tx *Tx) ReleaseDedupKey(key string) error {
	_, err := tx.exec(`UPDATE messages SET dedup_key = NULL WHERE dedup_key = ?`, key)
	return err
}

// InsertDelivery adds a destination to a message in state d.State (queued
// when empty) and records the event.
func (tx *Tx) InsertDelivery(d *Delivery, detail string) error {
	if d.State == "" {
		d.State = Queued
	}
	d.UpdatedAt = tx.now
	ins, err := tx.stmt(`INSERT INTO deliveries (message_id, connector, recipient, state, next_at, priority, expires_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("insert delivery: %w", err)
	}
	res, err := ins.ExecContext(tx.ctx, d.MessageID, d.Connector, d.Recipient, d.State, ms(d.NextAt), d.Priority, ms(d.ExpiresAt), ms(tx.now))
	if err != nil {
		return fmt.Errorf("insert delivery: %w", err)
	}
	d.ID, _ = res.LastInsertId()
	tx.hookDelivery(*d)
	return tx.AppendEvent(d.MessageID, d.ID, d.State, detail)
}

// AppendEvent adds one entry to a message's history.
func (tx *Tx) AppendEvent(messageID string, deliveryID int64, state, detail string) error {
	var did any
	if deliveryID != 0 {
		did = deliveryID
	}
	ins, err := tx.stmt(`INSERT INTO events (message_id, delivery_id, at, state, detail) VALUES (?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	_, err = ins.ExecContext(tx.ctx, messageID, did, ms(tx.now), state, detail)
	return err
}

// Transition is a change of a delivery's state.
type Transition struct {
	State     string
	Detail    string
	NextAt    time.Time // for a retry
	LastError string
	Attempted bool // count an attempt
	// Uncounted takes back the attempt counted when the delivery was
	// claimed: it was not tried, or the destination was unavailable (an
	// outage is not the message's fault).
	Uncounted bool
}

// SetDeliveryState moves a delivery to a new state and appends the event.
// It returns the updated delivery.
func (tx *Tx) SetDeliveryState(id int64, t Transition) (Delivery, error) {
	inc := 0
	if t.Attempted {
		inc++
	}
	if t.Uncounted {
		inc--
	}
	_, err := tx.exec(`UPDATE deliveries SET state = ?, next_at = ?, last_error = ?, attempts = MAX(attempts + ?, 0), updated_at = ? WHERE id = ?`,
		t.State, ms(t.NextAt), t.LastError, inc, ms(tx.now), id)
	if err != nil {
		return Delivery{}, fmt.Errorf("update delivery %d: %w", id, err)
	}
	d, err := tx.Delivery(id)
	if err != nil {
		return Delivery{}, err
	}
	tx.hookDelivery(d)
	return d, tx.AppendEvent(d.MessageID, id, t.State, t.Summary())
}

// Summary is what the history says of a transition: its detail, or else
// its error.
func (t Transition) Summary() string {
	if t.Detail == "" {
		return t.LastError
	}
	return t.Detail
}

const deliveryCols = `id, message_id, connector, recipient, state, attempts, next_at, last_error, priority, expires_at, updated_at`

func scanDelivery(row interface{ Scan(...any) error }) (Delivery, error) {
	var d Delivery
	var next, exp, upd int64
	err := row.Scan(&d.ID, &d.MessageID, &d.Connector, &d.Recipient, &d.State, &d.Attempts, &next, &d.LastError, &d.Priority, &exp, &upd)
	d.NextAt, d.ExpiresAt, d.UpdatedAt = fromMS(next), fromMS(exp), fromMS(upd)
	return d, err
}

// Delivery reads one delivery.
func (tx *Tx) Delivery(id int64) (Delivery, error) {
	d, err := scanDelivery(tx.tx.QueryRowContext(tx.ctx, `SELECT `+deliveryCols+` FROM deliveries WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return d, fmt.Errorf("delivery %d: %w", id, ErrNotFound)
	}
	return d, err
}

// ClaimDue moves up to limit due deliveries of a connector from queued (or
// scheduled whose time has come) to sending, and returns them: the highest
// priority first, then the longest due. Deliveries past their expiry are
// not claimed (see ExpireDue).
func (tx *Tx) ClaimDue(connector string, limit int) ([]Delivery, error) {
	return tx.ClaimDueLane(connector, Lane{All: true}, limit)
}

// Lane selects some of a connector's deliveries by recipient: those to
// Recipient, or, with Others, those to none of Others. All selects every
// one. A lane of one Recipient is in order: its deliveries go one at a
// time, oldest first; one that waits (queued again for later) holds back
// those behind it, one finished (delivered, failed…) no longer does.
type Lane struct {
	All       bool
	Recipient string
	Others    []string
}

// inOrder says the lane's deliveries go one at a time, oldest first.
func (l Lane) inOrder() bool { return !l.All && l.Others == nil }

// where is the lane's SQL condition on recipient and its arguments.
func (l Lane) where() (string, []any) {
	switch {
	case l.All, l.Others != nil && len(l.Others) == 0:
		return "", nil
	case l.Others != nil:
		args := make([]any, len(l.Others))
		for i, r := range l.Others {
			args[i] = r
		}
		return ` AND recipient NOT IN (?` + strings.Repeat(",?", len(l.Others)-1) + `)`, args
	}
	return ` AND recipient = ?`, []any{l.Recipient}
}

// ClaimDueLane is ClaimDue for the deliveries of one lane.
func (tx *Tx) ClaimDueLane(connector string, l Lane, limit int) ([]Delivery, error) {
	now := ms(tx.now)
	if l.inOrder() {
		// The head of the lane alone, if it is due (not when it is
		// being sent, or waits its retry).
		id, _, _, ok, err := tx.laneHead(connector, l.Recipient, now)
		if !ok {
			return nil, err
		}
		return tx.claimWhere(connector, now, ` AND id = ?`, []any{id}, 1)
	}
	cond, largs := l.where()
	return tx.claimWhere(connector, now, cond, largs, limit)
}

// claimWhere claims up to limit due deliveries of connector that also
// match cond.
func (tx *Tx) claimWhere(connector string, now int64, cond string, largs []any, limit int) ([]Delivery, error) {
	args := append([]any{connector, now, now}, largs...)
	rows, err := tx.tx.QueryContext(tx.ctx, `SELECT `+deliveryCols+` FROM deliveries
		WHERE connector = ? AND state IN ('queued', 'scheduled') AND next_at <= ? AND (expires_at = 0 OR expires_at > ?)`+cond+`
		ORDER BY priority DESC, next_at, id LIMIT ?`,
		append(args, limit)...)
	if err != nil {
		return nil, err
	}
	ds, err := scanDeliveries(rows)
	if err != nil {
		return nil, err
	}
	for i := range ds {
		detail := fmt.Sprintf("attempt %d", ds[i].Attempts+1)
		d, err := tx.SetDeliveryState(ds[i].ID, Transition{State: Sending, Detail: detail, Attempted: true})
		if err != nil {
			return nil, err
		}
		ds[i] = d
	}
	return ds, nil
}

// ExpireDue moves every queued or scheduled delivery whose expiry has
// passed to state expired and returns them as they now are. With a sane
// clock, an expiry recorded while it was not (not yet rebased, see
// package clock) has not passed.
func (tx *Tx) ExpireDue() ([]Delivery, error) {
	lo := int64(1)
	if clock.Sane(tx.now) {
		lo = floorMS()
	}
	rows, err := tx.tx.QueryContext(tx.ctx, `SELECT id, expires_at FROM deliveries
		WHERE expires_at > 0 AND expires_at >= ? AND state IN ('queued', 'scheduled') AND expires_at <= ? ORDER BY id`, lo, ms(tx.now))
	if err != nil {
		return nil, err
	}
	type due struct{ id, at int64 }
	var ids []due
	for rows.Next() {
		var d due
		if err := rows.Scan(&d.id, &d.at); err != nil {
			rows.Close()
			return nil, err
		}
		ids = append(ids, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([]Delivery, 0, len(ids))
	gone := make([]int64, 0, len(ids))
	for _, e := range ids {
		detail := "not sent: expired at " + fromMS(e.at).Format(time.RFC3339)
		d, err := tx.SetDeliveryState(e.id, Transition{State: Expired, Detail: detail})
		if err != nil {
			return nil, err
		}
		out = append(out, d)
		gone = append(gone, e.id)
	}
	// A copy waiting for the hub no longer goes.
	return out, tx.RemoveHubCopies(gone)
}

// NextExpiry is the earliest expiry of a queued or scheduled delivery
// (zero when there is none).
func (tx *Tx) NextExpiry() (time.Time, error) {
	var v sql.NullInt64
	err := tx.tx.QueryRowContext(tx.ctx, `SELECT MIN(expires_at) FROM deliveries WHERE expires_at > 0 AND state IN ('queued', 'scheduled')`).Scan(&v)
	if err != nil || !v.Valid {
		return time.Time{}, err
	}
	return fromMS(v.Int64), nil
}

// NextDue is when the earliest queued or scheduled delivery of a connector
// becomes due (zero when there is none).
func (tx *Tx) NextDue(connector string) (time.Time, error) {
	return tx.NextDueLane(connector, Lane{All: true})
}

// NextDueLane is NextDue for the deliveries of one lane.
func (tx *Tx) NextDueLane(connector string, l Lane) (time.Time, error) {
	var v sql.NullInt64
	cond, largs := l.where()
	if l.inOrder() {
		// When its head is due, or a delivery scheduled for later
		// comes due, whichever is first (none: nothing).
		now := ms(tx.now)
		_, state, at, ok, err := tx.laneHead(connector, l.Recipient, now)
		if err != nil {
			return time.Time{}, err
		}
		sched, err := tx.nextScheduled(connector, l.Recipient, now)
		if err != nil {
			return time.Time{}, err
		}
		head := ok && state != Sending
		switch {
		case head && (sched == 0 || at <= sched):
			return time.UnixMilli(at), nil
		case sched != 0:
			return time.UnixMilli(sched), nil
		}
		return time.Time{}, nil
	}
	err := tx.tx.QueryRowContext(tx.ctx, `SELECT MIN(next_at) FROM deliveries WHERE connector = ? AND state IN ('queued', 'scheduled')`+cond,
		append([]any{connector}, largs...)...).Scan(&v)
	if err != nil || !v.Valid {
		return time.Time{}, err
	}
	return time.UnixMilli(v.Int64), nil
}

// RecoverSending puts deliveries left in state sending by a crash back in
// the queue, with an event that says so. It returns how many it moved.
func (tx *Tx) RecoverSending(connector, detail string) (int, error) {
	rows, err := tx.tx.QueryContext(tx.ctx, `SELECT id FROM deliveries WHERE connector = ? AND state = 'sending'`, connector)
	if err != nil {
		return 0, err
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	for _, id := range ids {
		if _, err := tx.SetDeliveryState(id, Transition{State: Queued, Detail: detail}); err != nil {
			return 0, err
		}
	}
	return len(ids), nil
}

const messageCols = `id, direction, peer, modem, text, data, coding, parts, smsc, scts, report, flash, source, COALESCE(dedup_key, ''), state, detail, form_id, instance_id, port, validity_s, priority, not_before, expires_at, created_at, channel, from_addr, kind, tags, read, handled`

func scanMessage(row interface{ Scan(...any) error }) (Message, error) {
	var m Message
	var text sql.NullString
	var created, validity, notBefore, expires int64
	var tags string
	err := row.Scan(&m.ID, &m.Direction, &m.Peer, &m.Modem, &text, &m.Data, &m.Coding, &m.Parts, &m.SMSC, &m.SCTS,
		&m.Report, &m.Flash, &m.Source, &m.DedupKey, &m.State, &m.Detail, &m.FormID, &m.InstanceID, &m.Port, &validity,
		&m.Priority, &notBefore, &expires, &created, &m.Channel, &m.FromAddr, &m.Kind, &tags, &m.Read, &m.Handled)
	if tags != "" {
		m.Tags = strings.Split(tags, ",")
	}
	m.Validity = time.Duration(validity) * time.Second
	m.NotBefore, m.ExpiresAt = fromMS(notBefore), fromMS(expires)
	if text.Valid {
		m.Text = &text.String
	}
	m.CreatedAt = fromMS(created)
	return m, err
}

// Message reads one message.
func (tx *Tx) Message(id string) (Message, error) {
	m, err := scanMessage(tx.tx.QueryRowContext(tx.ctx, `SELECT `+messageCols+` FROM messages WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return m, fmt.Errorf("message %s: %w", id, ErrNotFound)
	}
	return m, err
}

// Deliveries lists a message's destinations.
func (tx *Tx) Deliveries(messageID string) ([]Delivery, error) {
	rows, err := tx.tx.QueryContext(tx.ctx, `SELECT `+deliveryCols+` FROM deliveries WHERE message_id = ? ORDER BY id`, messageID)
	if err != nil {
		return nil, err
	}
	return scanDeliveries(rows)
}

// scanDeliveries reads every row of rows (deliveryCols) and closes them.
func scanDeliveries(rows *sql.Rows) ([]Delivery, error) {
	defer rows.Close()
	var ds []Delivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, err
		}
		ds = append(ds, d)
	}
	return ds, rows.Err()
}

// Events lists a message's history, oldest first.
func (tx *Tx) Events(messageID string) ([]Event, error) {
	rows, err := tx.tx.QueryContext(tx.ctx, `SELECT id, message_id, COALESCE(delivery_id, 0), at, state, detail FROM events WHERE message_id = ? ORDER BY id`, messageID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var es []Event
	for rows.Next() {
		var e Event
		var at int64
		if err := rows.Scan(&e.ID, &e.MessageID, &e.DeliveryID, &at, &e.State, &e.Detail); err != nil {
			return nil, err
		}
		e.At = fromMS(at)
		es = append(es, e)
	}
	return es, rows.Err()
}

// Messages lists messages of one direction, newest first.
func (tx *Tx) Messages(direction string, limit int) ([]Message, error) {
	rows, err := tx.tx.QueryContext(tx.ctx, `SELECT `+messageCols+` FROM messages WHERE direction = ? ORDER BY created_at DESC, id DESC LIMIT ?`, direction, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Message
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// QueueDepths counts deliveries per connector and state, leaving out the
// final states.
func (tx *Tx) QueueDepths() (map[string]map[string]int, error) {
	rows, err := tx.tx.QueryContext(tx.ctx, `SELECT connector, state, COUNT(*) FROM deliveries WHERE state IN ('scheduled', 'queued', 'sending', 'sent') GROUP BY connector, state`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]map[string]int{}
	for rows.Next() {
		var c, s string
		var n int
		if err := rows.Scan(&c, &s, &n); err != nil {
			return nil, err
		}
		if out[c] == nil {
			out[c] = map[string]int{}
		}
		out[c][s] = n
	}
	return out, rows.Err()
}

// NextCounter increments a named counter kept in the kv table and returns
// its new value, wrapping to 1 after max.
func (tx *Tx) NextCounter(name string, max int) (int, error) {
	var v string
	err := tx.tx.QueryRowContext(tx.ctx, `SELECT value FROM kv WHERE key = ?`, name).Scan(&v)
	n := 0
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return 0, err
	default:
		fmt.Sscanf(v, "%d", &n)
	}
	n++
	if n > max || n < 1 {
		n = 1
	}
	_, err = tx.exec(`INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, name, fmt.Sprint(n))
	return n, err
}

// ConcatRef returns the concatenation reference of an SMS delivery,
// allocating one from the counter named counter (wrapping after max) the
// first time, so that a retried message keeps its reference and the
// recipient can join parts sent in different attempts.
func (tx *Tx) ConcatRef(deliveryID int64, counter string, max int) (int, error) {
	var v sql.NullInt64
	if err := tx.tx.QueryRowContext(tx.ctx, `SELECT concat_ref FROM deliveries WHERE id = ?`, deliveryID).Scan(&v); err != nil {
		return 0, fmt.Errorf("delivery %d: %w", deliveryID, err)
	}
	if v.Valid {
		return int(v.Int64), nil
	}
	n, err := tx.NextCounter(counter, max)
	if err != nil {
		return 0, err
	}
	_, err = tx.exec(`UPDATE deliveries SET concat_ref = ? WHERE id = ?`, n, deliveryID)
	return n, err
}

// Managed is what CancelDeliveries or RetryDeliveries did to a message:
// the destinations it changed (as they now are), and how many of the
// others are in each state.
type Managed struct {
	Changed []Delivery
	Left    map[string]int
}

// stateOrder is the order of the states in CountStates.
var stateOrder = []string{Scheduled, Queued, Sending, Sent, Delivered, Failed, Expired, Cancelled}

// CountStates says how many destinations are in each state, in the order
// of a delivery's life: "3 sent, 2 failed".
func CountStates(n map[string]int) string {
	var parts []string
	seen := map[string]bool{}
	for _, st := range stateOrder {
		if n[st] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n[st], st))
		}
		seen[st] = true
	}
	var other []string
	for st := range n {
		if !seen[st] && n[st] > 0 {
			other = append(other, st)
		}
	}
	sort.Strings(other)
	for _, st := range other {
		parts = append(parts, fmt.Sprintf("%d %s", n[st], st))
	}
	return strings.Join(parts, ", ")
}

// CancelDeliveries cancels every queued or scheduled destination of a
// message, saying in the history who did it. Destinations being sent
// right now (state sending) are left to finish their attempt: their parts
// may be with the network already; one put back in the queue after it is
// cancelled by the next cancel. It returns the deliveries it cancelled and
// the others counted by state; ErrNotFound for an unknown message,
// ErrWrongState (with the states counted) when none can be.
func (tx *Tx) CancelDeliveries(messageID, by string, busy func(deliveryID int64) bool) (Managed, error) {
	ds, err := tx.outDeliveries(messageID)
	if err != nil {
		return Managed{}, err
	}
	res := Managed{Left: map[string]int{}}
	var ids []int64
	for _, d := range ds {
		if d.State == Queued || d.State == Scheduled || d.State == Sending && busy != nil && !busy(d.ID) {
			ids = append(ids, d.ID)
		} else {
			res.Left[d.State]++
		}
	}
	if len(ids) == 0 {
		why := ""
		if n := res.Left[Sending]; n > 0 {
			why = fmt.Sprintf("; %d being sent right now finish their attempt: cancel again after it to catch any put back in the queue", n)
		}
		return Managed{}, fmt.Errorf("%w: message %s: %s: nothing left to cancel (only a queued or scheduled message can be cancelled)%s",
			ErrWrongState, messageID, CountStates(res.Left), why)
	}
	res.Changed = make([]Delivery, 0, len(ids))
	for _, id := range ids {
		d, err := tx.SetDeliveryState(id, Transition{State: Cancelled, Detail: "cancelled by " + by})
		if err != nil {
			return Managed{}, err
		}
		res.Changed = append(res.Changed, d)
	}
	// A copy waiting for the hub no longer goes.
	return res, tx.RemoveHubCopies(ids)
}

// RetryDeliveries puts every failed or expired destination of a message
// back in the queue with its attempts reset to 0 (and, for an expired
// one, its expiry removed: it has passed), saying so and who did it in
// the history. Parts a modem accepted are not sent again; parts the
// network reported failed are. It returns the deliveries it queued and
// the others counted by state; ErrNotFound for an unknown message,
// ErrWrongState (with the states counted) when none can be.
func (tx *Tx) RetryDeliveries(messageID, by string) (Managed, error) {
	ds, err := tx.outDeliveries(messageID)
	if err != nil {
		return Managed{}, err
	}
	res := Managed{Left: map[string]int{}}
	for _, d := range ds {
		if d.State != Failed && d.State != Expired {
			res.Left[d.State]++
		}
	}
	if sum(res.Left) == len(ds) {
		return Managed{}, fmt.Errorf("%w: message %s: %s: nothing to retry (only a failed or expired message can be retried)",
			ErrWrongState, messageID, CountStates(res.Left))
	}
	for _, d := range ds {
		if d.State != Failed && d.State != Expired {
			continue
		}
		detail := fmt.Sprintf("retried by %s: was %s, attempts reset to 0 (were %d)", by, d.State, d.Attempts)
		if d.State == Expired {
			detail += ", expiry removed"
		}
		if _, err := tx.exec(`UPDATE deliveries SET attempts = 0, expires_at = 0 WHERE id = ?`, d.ID); err != nil {
			return Managed{}, err
		}
		if _, err := tx.exec(`DELETE FROM sent_parts WHERE delivery_id = ? AND state = ?`, d.ID, Failed); err != nil {
			return Managed{}, err
		}
		nd, err := tx.SetDeliveryState(d.ID, Transition{State: Queued, Detail: detail})
		if err != nil {
			return Managed{}, err
		}
		res.Changed = append(res.Changed, nd)
	}
	return res, nil
}

func sum(n map[string]int) int {
	t := 0
	for _, v := range n {
		t += v
	}
	return t
}

// outDeliveries returns the deliveries of a message, or ErrNotFound.
func (tx *Tx) outDeliveries(messageID string) ([]Delivery, error) {
	if _, err := tx.Message(messageID); err != nil {
		return nil, err
	}
	return tx.Deliveries(messageID)
}
