package store

import (
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// OptOut is an address that asked for no more messages (STOP), until it
// asks again (START).
type OptOut struct {
	Addr      string    `json:"addr"`
	At        time.Time `json:"at"`
	Word      string    `json:"word,omitempty"`
	MessageID string    `json:"message_id,omitempty"`
	Channel   string    `json:"channel,omitempty"`
	// Seq is the last delivery id when it opted out: the deliveries up
	// to it were created before the opt-out.
	Seq int64 `json:"-"`
}

// Subscription is an address subscribed to a topic.
type Subscription struct {
	Topic     string    `json:"topic"`
	Addr      string    `json:"addr"`
	At        time.Time `json:"at"`
	MessageID string    `json:"message_id,omitempty"`
	Channel   string    `json:"channel,omitempty"`
}

// PeopleChange is one opt-out, opt-in, join or leave, as recorded.
type PeopleChange struct {
	At        time.Time `json:"at"`
	Addr      string    `json:"addr"`
	Action    string    `json:"action"`
	Topic     string    `json:"topic,omitempty"`
	MessageID string    `json:"message_id,omitempty"`
	Channel   string    `json:"channel,omitempty"`
}

// Actions of PeopleChange.
const (
	ActionOptOut = "optout"
	ActionOptIn  = "optin"
	ActionJoin   = "join"
	ActionLeave  = "leave"
)

func (tx *Tx) logPeople(c PeopleChange) error {
	_, err := tx.exec(`INSERT INTO people_log (at, addr, action, topic, message_id, channel) VALUES (?, ?, ?, ?, ?, ?)`,
		ms(tx.now), c.Addr, c.Action, c.Topic, c.MessageID, c.Channel)
	if err != nil {
		return fmt.Errorf("people log: %w", err)
	}
	return nil
}

// GetOptOut returns addr's opt-out, and whether it has one.
func (tx *Tx) GetOptOut(addr string) (OptOut, bool, error) {
	o := OptOut{Addr: addr}
	var at int64
	err := tx.tx.QueryRowContext(tx.ctx, `SELECT at, word, message_id, channel, seq FROM optouts WHERE addr = ?`, addr).
		Scan(&at, &o.Word, &o.MessageID, &o.Channel, &o.Seq)
	if errors.Is(err, sql.ErrNoRows) {
		return OptOut{}, false, nil
	}
	if err != nil {
		return OptOut{}, false, fmt.Errorf("opt-out: %w", err)
	}
	o.At = fromMS(at)
	return o, true, nil
}

// SetOptOut records that o.Addr opted out; changed is false when it
// already had (nothing is written then).
func (tx *Tx) SetOptOut(o OptOut) (changed bool, err error) {
	res, err := tx.exec(`INSERT INTO optouts (addr, at, word, message_id, channel, seq)
		VALUES (?, ?, ?, ?, ?, (SELECT COALESCE(MAX(id), 0) FROM deliveries)) ON CONFLICT (addr) DO NOTHING`,
		o.Addr, ms(tx.now), o.Word, o.MessageID, o.Channel)
	if err != nil {
		return false, fmt.Errorf("opt-out: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return false, nil
	}
	return true, tx.logPeople(PeopleChange{Addr: o.Addr, Action: ActionOptOut, MessageID: o.MessageID, Channel: o.Channel})
}

// ClearOptOut records that addr opted in again; changed is false when it
// had not opted out.
func (tx *Tx) ClearOptOut(addr, messageID, channel string) (changed bool, err error) {
	res, err := tx.exec(`DELETE FROM optouts WHERE addr = ?`, addr)
	if err != nil {
		return false, fmt.Errorf("opt-in: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return false, nil
	}
	return true, tx.logPeople(PeopleChange{Addr: addr, Action: ActionOptIn, MessageID: messageID, Channel: channel})
}

// OptOuts lists every opt-out, oldest first.
func (tx *Tx) OptOuts() ([]OptOut, error) {
	rows, err := tx.tx.QueryContext(tx.ctx, `SELECT addr, at, word, message_id, channel FROM optouts ORDER BY at, addr`)
	if err != nil {
		return nil, fmt.Errorf("opt-outs: %w", err)
	}
	defer rows.Close()
	out := []OptOut{}
	for rows.Next() {
		var o OptOut
		var at int64
		if err := rows.Scan(&o.Addr, &at, &o.Word, &o.MessageID, &o.Channel); err != nil {
			return nil, err
		}
		o.At = fromMS(at)
		out = append(out, o)
	}
	return out, rows.Err()
}

// Subscribe subscribes s.Addr to s.Topic; changed is false when it
// already was.
func (tx *Tx) Subscribe(s Subscription) (changed bool, err error) {
	res, err := tx.exec(`INSERT INTO subscriptions (topic, addr, at, message_id, channel) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
		s.Topic, s.Addr, ms(tx.now), s.MessageID, s.Channel)
	if err != nil {
		return false, fmt.Errorf("subscribe: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return false, nil
	}
	return true, tx.logPeople(PeopleChange{Addr: s.Addr, Action: ActionJoin, Topic: s.Topic, MessageID: s.MessageID, Channel: s.Channel})
}

// Unsubscribe takes addr off topic; changed is false when it was not on.
func (tx *Tx) Unsubscribe(topic, addr, messageID, channel string) (changed bool, err error) {
	res, err := tx.exec(`DELETE FROM subscriptions WHERE topic = ? AND addr = ?`, topic, addr)
	if err != nil {
		return false, fmt.Errorf("unsubscribe: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return false, nil
	}
	return true, tx.logPeople(PeopleChange{Addr: addr, Action: ActionLeave, Topic: topic, MessageID: messageID, Channel: channel})
}

// Subscriptions lists the subscriptions of topic (every topic when
// empty), by topic then oldest first.
func (tx *Tx) Subscriptions(topic string) ([]Subscription, error) {
	rows, err := tx.tx.QueryContext(tx.ctx, `SELECT topic, addr, at, message_id, channel FROM subscriptions WHERE ? = '' OR topic = ?
		ORDER BY topic, at, addr`, topic, topic)
	if err != nil {
		return nil, fmt.Errorf("subscriptions: %w", err)
	}
	defer rows.Close()
	out := []Subscription{}
	for rows.Next() {
		var s Subscription
		var at int64
		if err := rows.Scan(&s.Topic, &s.Addr, &at, &s.MessageID, &s.Channel); err != nil {
			return nil, err
		}
		s.At = fromMS(at)
		out = append(out, s)
	}
	return out, rows.Err()
}

// PeopleLog lists the recorded changes of addr (every address when
// empty), oldest first, at most limit (0: all).
func (tx *Tx) PeopleLog(addr string, limit int) ([]PeopleChange, error) {
	if limit <= 0 {
		limit = -1
	}
	rows, err := tx.tx.QueryContext(tx.ctx, `SELECT at, addr, action, topic, message_id, channel FROM people_log WHERE ? = '' OR addr = ?
		ORDER BY id LIMIT ?`, addr, addr, limit)
	if err != nil {
		return nil, fmt.Errorf("people log: %w", err)
	}
	defer rows.Close()
	out := []PeopleChange{}
	for rows.Next() {
		var c PeopleChange
		var at int64
		if err := rows.Scan(&at, &c.Addr, &c.Action, &c.Topic, &c.MessageID, &c.Channel); err != nil {
			return nil, err
		}
		c.At = fromMS(at)
		out = append(out, c)
	}
	return out, rows.Err()
}
