package store

import (
	"time"
)

// Hooks are told what the store committed, after the commit, for the
// daemon's metrics: what they count is kept in memory and never written,
// so counting costs the SD card nothing. They must not block; a nil one
// is skipped.
type Hooks struct {
	// Commit gets each group commit's duration, from begin to durable
	// commit on the monotonic clock, and how many writes it held.
	Commit func(took time.Duration, writes int)
	// Message gets each message stored.
	Message func(direction, channel string)
	// Delivery gets each delivery created in or moved to a state. For
	// the states sent and delivered, age is how long before its message
	// was stored (on the store's clock, which makes up for jumps);
	// otherwise it is negative.
	Delivery func(connector, state string, age time.Duration)
	// SentPart gets each part a modem accepted.
	SentPart func(modem string)
}

// SetHooks installs h, replacing the hooks set before.
func (s *Store) SetHooks(h Hooks) { s.hooks.Store(&h) }

func (tx *Tx) hooks() *Hooks {
	if tx.s == nil {
		return nil
	}
	return tx.s.hooks.Load()
}

func (tx *Tx) hookMessage(m *Message) {
	if h := tx.hooks(); h != nil && h.Message != nil {
		dir, ch := m.Direction, m.Channel
		if ch == "" {
			ch = m.Source
		}
		tx.AfterCommit(func() { h.Message(dir, ch) })
	}
}

func (tx *Tx) hookDelivery(d Delivery) {
	h := tx.hooks()
	if h == nil || h.Delivery == nil {
		return
	}
	age := time.Duration(-1)
	if d.State == Sent || d.State == Delivered {
		var created int64
		// A primary-key lookup, and only with a hook: a delivery
		// carries no time of its message.
		if q, err := tx.stmt(`SELECT created_at FROM messages WHERE id = ?`); err == nil && q.QueryRowContext(tx.ctx, d.MessageID).Scan(&created) == nil {
			age = max(tx.now.Sub(fromMS(created)), 0)
		}
	}
	tx.AfterCommit(func() { h.Delivery(d.Connector, d.State, age) })
}

func (tx *Tx) hookSentPart(modem string) {
	if h := tx.hooks(); h != nil && h.SentPart != nil {
		tx.AfterCommit(func() { h.SentPart(modem) })
	}
}

// Backlog is the unfinished deliveries of one connector in one state.
type Backlog struct {
	Connector string
	State     string
	Count     int
	// Oldest is when the message of the first of them was stored.
	Oldest time.Time
}

// Backlog counts the unfinished deliveries (scheduled, queued, sending,
// sent: waiting for a report) by connector and state, with the oldest
// message of each. It reads only those deliveries, through their index,
// and one message per group: a store of finished messages costs nothing.
func (tx *Tx) Backlog() ([]Backlog, error) {
	// The connectors are found by a seek each on deliveries_due (a
	// GROUP BY would read the whole index, finished deliveries too).
	q, err := tx.stmt(`WITH RECURSIVE c(name) AS (
			SELECT MIN(connector) FROM deliveries
			UNION ALL SELECT (SELECT MIN(connector) FROM deliveries WHERE connector > c.name) FROM c WHERE c.name IS NOT NULL),
		s(state) AS (VALUES ('scheduled'), ('queued'), ('sending'), ('sent')),
		q AS (SELECT c.name AS connector, s.state AS state,
			(SELECT COUNT(*) FROM deliveries WHERE connector = c.name AND state = s.state) AS n,
			(SELECT MIN(id) FROM deliveries WHERE connector = c.name AND state = s.state) AS first
			FROM c, s WHERE c.name IS NOT NULL)
		SELECT q.connector, q.state, q.n, COALESCE(m.created_at, 0) FROM q
		JOIN deliveries d ON d.id = q.first LEFT JOIN messages m ON m.id = d.message_id
		WHERE q.n > 0 ORDER BY q.connector, q.state`)
	if err != nil {
		return nil, err
	}
	rows, err := q.QueryContext(tx.ctx)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Backlog
	for rows.Next() {
		var b Backlog
		var created int64
		if err := rows.Scan(&b.Connector, &b.State, &b.Count, &created); err != nil {
			return nil, err
		}
		b.Oldest = fromMS(created)
		out = append(out, b)
	}
	return out, rows.Err()
}
