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

// EarlierUnfinished returns the oldest delivery of the same connector to
// the same recipient created before delivery id that is not finished yet
// (scheduled, queued or sending); ok is false when there is none, and id
// may go out now without overtaking anything.
func (tx *Tx) EarlierUnfinished(connector, recipient string, id int64) (d Delivery, ok bool, err error) {
	d, err = scanDelivery(tx.tx.QueryRowContext(tx.ctx, `SELECT `+deliveryCols+` FROM deliveries
		WHERE connector = ? AND recipient = ? AND id < ? AND state IN ('queued', 'scheduled', 'sending') ORDER BY id LIMIT 1`,
		connector, recipient, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Delivery{}, false, nil
	}
	return d, err == nil, err
}

// DueNow makes every queued delivery of a connector to a recipient due
// now (those waiting behind one that is now finished); it returns how
// many it moved.
func (tx *Tx) DueNow(connector, recipient string) (int, error) {
	now := ms(tx.now)
	res, err := tx.exec(`UPDATE deliveries SET next_at = ? WHERE connector = ? AND recipient = ? AND state = 'queued' AND next_at > ?`,
		now, connector, recipient, now)
	if err != nil {
		return 0, err
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}
