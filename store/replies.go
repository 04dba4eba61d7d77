package store

import (
	"fmt"
	"time"
)

// RecentSends lists the creation times of the send requests of a
// channel created since then, by peer, oldest first: what a run before
// this one sent (the routes' auto-replies, channel "route", to count
// them against their bound after a restart).
func (tx *Tx) RecentSends(channel string, since time.Time) (map[string][]time.Time, error) {
	rows, err := tx.tx.QueryContext(tx.ctx, `SELECT peer, created_at FROM messages WHERE direction = 'out' AND created_at > ? AND channel = ?
		ORDER BY created_at`, ms(since), channel)
	if err != nil {
		return nil, fmt.Errorf("recent sends: %w", err)
	}
	defer rows.Close()
	out := map[string][]time.Time{}
	for rows.Next() {
		var peer string
		var at int64
		if err := rows.Scan(&peer, &at); err != nil {
			return nil, err
		}
		out[peer] = append(out[peer], fromMS(at))
	}
	return out, rows.Err()
}
