package store

import (
	"fmt"
	"strings"
	"time"
)

// Quota count kinds (table quota_counts).
const (
	QuotaSource = "source" // key: who sent; n: the SMS of one send
	QuotaNumber = "number" // key: the number; n: 1
)

// QuotaUse is one counted send within a window: when, and how many.
type QuotaUse struct {
	At time.Time
	N  int
}

// QuotaUses lists the sends counted for key since then, oldest first.
func (tx *Tx) QuotaUses(kind, key string, since time.Time) ([]QuotaUse, error) {
	st, err := tx.stmt(`SELECT at, n FROM quota_counts WHERE kind = ? AND key = ? AND at > ? ORDER BY at, id`)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(tx.ctx, kind, key, ms(since))
	if err != nil {
		return nil, fmt.Errorf("quota uses: %w", err)
	}
	defer rows.Close()
	var out []QuotaUse
	for rows.Next() {
		var at int64
		var n int
		if err := rows.Scan(&at, &n); err != nil {
			return nil, err
		}
		out = append(out, QuotaUse{At: fromMS(at), N: n})
	}
	return out, rows.Err()
}

// QuotaCount sums the sends counted for key since then.
func (tx *Tx) QuotaCount(kind, key string, since time.Time) (int, error) {
	st, err := tx.stmt(`SELECT COALESCE(SUM(n), 0) FROM quota_counts WHERE kind = ? AND key = ? AND at > ?`)
	if err != nil {
		return 0, err
	}
	var n int
	if err := st.QueryRowContext(tx.ctx, kind, key, ms(since)).Scan(&n); err != nil {
		return 0, fmt.Errorf("quota count: %w", err)
	}
	return n, nil
}

// AddQuota counts n for key at the transaction's time, for message id.
func (tx *Tx) AddQuota(kind, key, messageID string, n int) error {
	st, err := tx.stmt(`INSERT INTO quota_counts (kind, key, at, n, message_id) VALUES (?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	if _, err := st.ExecContext(tx.ctx, kind, key, ms(tx.now), n, messageID); err != nil {
		return fmt.Errorf("count quota: %w", err)
	}
	return nil
}

// PruneQuota deletes up to limit counts recorded before then.
func (tx *Tx) PruneQuota(before time.Time, limit int) (int64, error) {
	res, err := tx.exec(`DELETE FROM quota_counts WHERE id IN (SELECT id FROM quota_counts WHERE at < ? ORDER BY at LIMIT ?)`, ms(before), limit)
	if err != nil {
		return 0, fmt.Errorf("prune quota counts: %w", err)
	}
	return res.RowsAffected()
}

// DueBefore lists up to limit deliveries of connector that are due now
// (queued or scheduled, next_at passed, not expired), below priority,
// whose message was stored before then and came in on none of the
// channels skip: what the quiet hours hold back when they find it
// waiting (an outage's backlog, a retry).
func (tx *Tx) DueBefore(connector string, priority int, before time.Time, skip []string, limit int) ([]Delivery, error) {
	now := ms(tx.now)
	args := []any{connector, now, now, priority, ms(before)}
	q := `SELECT ` + deliveryCols + ` FROM deliveries WHERE connector = ? AND state IN ('queued', 'scheduled') AND next_at <= ?
		AND (expires_at = 0 OR expires_at > ?) AND priority < ?
		AND message_id IN (SELECT id FROM messages WHERE created_at < ?`
	for _, c := range skip {
		q += ` AND channel != ?`
		args = append(args, c)
	}
	rows, err := tx.tx.QueryContext(tx.ctx, q+`) ORDER BY id LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("due deliveries: %w", err)
	}
	return scanDeliveries(rows)
}

// quotaChunk bounds the keys of one statement (SQLite's bound on
// parameters is 32766).
const quotaChunk = 500

// QuotaCounts sums the sends counted for each of keys since then (keys
// with none are left out): QuotaCount for many keys in few statements.
func (tx *Tx) QuotaCounts(kind string, keys []string, since time.Time) (map[string]int, error) {
	out := map[string]int{}
	for len(keys) > 0 {
		part := keys[:min(len(keys), quotaChunk)]
		keys = keys[len(part):]
		args := []any{kind, ms(since)}
		for _, k := range part {
			args = append(args, k)
		}
		rows, err := tx.tx.QueryContext(tx.ctx, `SELECT key, SUM(n) FROM quota_counts WHERE kind = ? AND at > ? AND key IN (?`+
			strings.Repeat(",?", len(part)-1)+`) GROUP BY key`, args...)
		if err != nil {
			return nil, fmt.Errorf("quota counts: %w", err)
		}
		for rows.Next() {
			var k string
			var n int
			if err := rows.Scan(&k, &n); err != nil {
				rows.Close()
				return nil, err
			}
			out[k] = n
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// AddQuotas counts 1 for each of keys at the transaction's time, for
// message id: AddQuota for many keys in few statements.
func (tx *Tx) AddQuotas(kind string, keys []string, messageID string) error {
	for len(keys) > 0 {
		part := keys[:min(len(keys), quotaChunk)]
		keys = keys[len(part):]
		args := make([]any, 0, 4*len(part))
		for _, k := range part {
			args = append(args, kind, k, ms(tx.now), messageID)
		}
		if _, err := tx.exec(`INSERT INTO quota_counts (kind, key, at, n, message_id) VALUES (?, ?, ?, 1, ?)`+
			strings.Repeat(", (?, ?, ?, 1, ?)", len(part)-1), args...); err != nil {
			return fmt.Errorf("count quota: %w", err)
		}
	}
	return nil
}
