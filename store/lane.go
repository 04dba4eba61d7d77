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
