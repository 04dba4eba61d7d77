package store

import (
	"fmt"
	"time"
)

// Pause is a modem or connector an operator paused.
type Pause struct {
	Name  string    `json:"name"`
	Kind  string    `json:"kind"` // "modem" or "connector"
	Since time.Time `json:"since"`
	By    string    `json:"by"`
}

// SetPaused records name as paused (now, by by); it reports false when it
// was paused already (the first pause is kept).
func (tx *Tx) SetPaused(name, kind, by string) (bool, error) {
	res, err := tx.exec(`INSERT INTO paused (name, kind, since, by) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`, name, kind, ms(tx.now), by)
	if err != nil {
		return false, fmt.Errorf("pause: %w", err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// ClearPaused forgets name's pause; it reports false when it was not
// paused.
func (tx *Tx) ClearPaused(name string) (bool, error) {
	res, err := tx.exec(`DELETE FROM paused WHERE name = ?`, name)
	if err != nil {
		return false, fmt.Errorf("resume: %w", err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// Paused lists the pauses by name.
func (tx *Tx) Paused() ([]Pause, error) {
	rows, err := tx.tx.QueryContext(tx.ctx, `SELECT name, kind, since, by FROM paused ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("paused: %w", err)
	}
	defer rows.Close()
	var out []Pause
	for rows.Next() {
		var p Pause
		var since int64
		if err := rows.Scan(&p.Name, &p.Kind, &since, &p.By); err != nil {
			return nil, err
		}
		p.Since = fromMS(since)
		out = append(out, p)
	}
	return out, rows.Err()
}

// HurryModem makes the queued deliveries of connector whose message must
// go out through modem due now: they waited for it (paused), and it can
// send again.
func (tx *Tx) HurryModem(connector, modem string) (int64, error) {
	res, err := tx.exec(`UPDATE deliveries SET next_at = ? WHERE connector = ? AND state = ? AND next_at > ?
		AND message_id IN (SELECT id FROM messages WHERE modem = ?)`, ms(tx.now), connector, Queued, ms(tx.now), modem)
	if err != nil {
		return 0, fmt.Errorf("deliveries of modem %s: %w", modem, err)
	}
	return res.RowsAffected()
}
