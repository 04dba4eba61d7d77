package store

import (
	"database/sql"
	"errors"
	"time"
)

// SetReplyModem records the modem an outbound message, an answer, should
// go out through when it can.
func (tx *Tx) SetReplyModem(messageID, modem string) error {
	_, err := tx.exec(`INSERT OR REPLACE INTO reply_modems (message_id, modem) VALUES (?, ?)`, messageID, modem)
	return err
}

// ReplyModem is the modem SetReplyModem recorded ("" when none).
func (tx *Tx) ReplyModem(messageID string) (string, error) {
	var modem string
	err := tx.tx.QueryRowContext(tx.ctx, `SELECT modem FROM reply_modems WHERE message_id = ?`, messageID).Scan(&modem)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return modem, err
}

// PartsSentSince counts the parts each modem has had accepted since a
// time.
func (tx *Tx) PartsSentSince(since time.Time) (map[string]int, error) {
	rows, err := tx.tx.QueryContext(tx.ctx, `SELECT modem, COUNT(*) FROM sent_parts INDEXED BY sent_parts_sent WHERE sent_at >= ? GROUP BY modem`, ms(since))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return nil, err
		}
		out[id] = n
	}
	return out, rows.Err()
}

// LastInboundModem is the modem the last SMS from peer since a time came
// in on ("" when none came).
func (tx *Tx) LastInboundModem(peer string, since time.Time) (string, error) {
	var modem string
	err := tx.tx.QueryRowContext(tx.ctx, `SELECT modem FROM messages INDEXED BY messages_peer
		WHERE peer = ? AND created_at >= ? AND direction = 'in' AND channel = 'sms' ORDER BY created_at DESC, id DESC LIMIT 1`, peer, ms(since)).Scan(&modem)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return modem, err
}

// PartTimesSince is when each modem had its parts accepted since a
// time, oldest first.
func (tx *Tx) PartTimesSince(since time.Time) (map[string][]time.Time, error) {
	rows, err := tx.tx.QueryContext(tx.ctx, `SELECT modem, sent_at FROM sent_parts INDEXED BY sent_parts_sent WHERE sent_at >= ? ORDER BY sent_at`, ms(since))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string][]time.Time{}
	for rows.Next() {
		var id string
		var at int64
		if err := rows.Scan(&id, &at); err != nil {
			return nil, err
		}
		out[id] = append(out[id], fromMS(at))
	}
	return out, rows.Err()
}
