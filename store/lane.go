package store

import (
	"database/sql"
	"errors"
	"fmt"
)

// InsertEventDelivery is InsertDelivery for a delivery that carries its
// own body (one event: a message may have several to one recipient, see
// migration 0011).
func (tx *Tx) InsertEventDelivery(d *Delivery, body []byte, detail string) error {
	if body == nil {
		body = []byte{}
	}
	if d.State == "" {
		d.State = Queued
	}
	d.UpdatedAt = tx.now
	ins, err := tx.stmt(`INSERT INTO deliveries (message_id, connector, recipient, state, next_at, priority, expires_at, updated_at, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("insert delivery: %w", err)
	}
	res, err := ins.ExecContext(tx.ctx, d.MessageID, d.Connector, d.Recipient, d.State, ms(d.NextAt), d.Priority, ms(d.ExpiresAt), ms(tx.now), body)
	if err != nil {
		return fmt.Errorf("insert delivery: %w", err)
	}
	d.ID, _ = res.LastInsertId()
	tx.hookDelivery(*d)
	return tx.AppendEvent(d.MessageID, d.ID, d.State, detail)
}

// DeliveryBody reads the body a delivery carries (nil when it has none);
// ErrNotFound for an unknown delivery.
func (tx *Tx) DeliveryBody(id int64) ([]byte, error) {
	var b []byte
	err := tx.tx.QueryRowContext(tx.ctx, `SELECT body FROM deliveries WHERE id = ?`, id).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("delivery %d: %w", id, ErrNotFound)
	}
	return b, err
}

// laneHead is the delivery an ordered lane (one destination's, Lane with
// a Recipient) hands over next: its oldest unfinished one, queued or
// being sent, and waiting its retry included (a later one waits behind
// it: the destination's order). A delivery scheduled for later (a send
// with not_before) is not in the order until its time has come: it does
// not hold back the events due before it. ok is false when the lane has
// nothing unfinished.
func (tx *Tx) laneHead(connector, recipient string, now int64) (id int64, state string, nextAt int64, ok bool, err error) {
	err = tx.tx.QueryRowContext(tx.ctx, `SELECT id, state, next_at FROM deliveries WHERE connector = ? AND recipient = ?
		AND (state IN ('queued', 'sending') OR state = 'scheduled' AND next_at <= ?)
		ORDER BY id LIMIT 1`, connector, recipient, now).Scan(&id, &state, &nextAt)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, "", 0, false, nil
	}
	return id, state, nextAt, err == nil, err
}

// nextScheduled is when the first delivery of a lane scheduled for later
// than now comes due (0: none).
func (tx *Tx) nextScheduled(connector, recipient string, now int64) (int64, error) {
	var v sql.NullInt64
	err := tx.tx.QueryRowContext(tx.ctx, `SELECT MIN(next_at) FROM deliveries WHERE connector = ? AND recipient = ? AND state = 'scheduled' AND next_at > ?`,
		connector, recipient, now).Scan(&v)
	return v.Int64, err
}
