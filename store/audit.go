package store

import (
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/outpost-sms/outpost/store/clock"
)

// AuditEntry is one state-changing action: who asked, on which channel
// (cli, http, mqtt, email, hub, sms…), the operation and its target, and
// when. The audit table is append-only (migration 0018 refuses updates
// and deletes).
type AuditEntry struct {
	ID      int64     `json:"id"`
	At      time.Time `json:"at"`
	Who     string    `json:"who"`
	Channel string    `json:"channel"`
	Op      string    `json:"op"`
	Target  string    `json:"target,omitempty"`
	Detail  string    `json:"detail,omitempty"`
}

// AppendAudit appends e to the audit log inside tx (its ID and At are set).
func (tx *Tx) AppendAudit(e *AuditEntry) error {
	if e.Op == "" {
		return errors.New("audit: no operation")
	}
	e.At = tx.now
	res, err := tx.exec(`INSERT INTO audit (at, who, channel, op, target, detail) VALUES (?, ?, ?, ?, ?, ?)`,
		ms(e.At), e.Who, e.Channel, e.Op, e.Target, e.Detail)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	e.ID, err = res.LastInsertId()
	e.At = fromMS(ms(e.At))
	return err
}

// AuditLog returns the entries at or after since (zero: all) whose who
// contains who (case-insensitive; "": everyone), oldest first, at most
// limit (0: 10,000) of the newest.
func (tx *Tx) AuditLog(since time.Time, who string, limit int) ([]AuditEntry, error) {
	if limit <= 0 {
		limit = 10000
	}
	q := `SELECT id, at, who, channel, op, target, detail FROM audit WHERE at >= ?`
	args := []any{ms(since)}
	if since.IsZero() {
		args[0] = 0
	}
	if who != "" {
		q += ` AND instr(lower(who), ?) > 0`
		args = append(args, strings.ToLower(who))
	}
	q = `SELECT * FROM (` + q + ` ORDER BY id DESC LIMIT ?) ORDER BY id`
	args = append(args, limit)
	rows, err := tx.tx.QueryContext(tx.ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	defer rows.Close()
	out := []AuditEntry{}
	for rows.Next() {
		var e AuditEntry
		var at int64
		if err := rows.Scan(&e.ID, &at, &e.Who, &e.Channel, &e.Op, &e.Target, &e.Detail); err != nil {
			return nil, err
		}
		e.At = fromMS(at)
		out = append(out, e)
	}
	return out, rows.Err()
}

// LastAudit returns the newest entry of operation op, and whether there
// is one.
func (tx *Tx) LastAudit(op string) (AuditEntry, bool, error) {
	var e AuditEntry
	var at int64
	err := tx.tx.QueryRowContext(tx.ctx, `SELECT id, at, who, channel, op, target, detail FROM audit WHERE op = ? ORDER BY id DESC LIMIT 1`, op).
		Scan(&e.ID, &at, &e.Who, &e.Channel, &e.Op, &e.Target, &e.Detail)
	if errors.Is(err, sql.ErrNoRows) {
		return e, false, nil
	}
	if err != nil {
		return e, false, fmt.Errorf("audit: %w", err)
	}
	e.At = fromMS(at)
	return e, true, nil
}

// Ban is an address whose messages are stored and not routed or
// answered, and to which nothing is sent.
type Ban struct {
	Addr    string    `json:"addr"`
	At      time.Time `json:"at"`
	By      string    `json:"by,omitempty"`
	Channel string    `json:"channel,omitempty"`
	Reason  string    `json:"reason,omitempty"`
}

// GetBan returns addr's ban, and whether it has one.
func (tx *Tx) GetBan(addr string) (Ban, bool, error) {
	b := Ban{Addr: addr}
	var at int64
	err := tx.tx.QueryRowContext(tx.ctx, `SELECT at, by, channel, reason FROM bans WHERE addr = ?`, addr).
		Scan(&at, &b.By, &b.Channel, &b.Reason)
	if errors.Is(err, sql.ErrNoRows) {
		return Ban{}, false, nil
	}
	if err != nil {
		return Ban{}, false, fmt.Errorf("ban: %w", err)
	}
	b.At = fromMS(at)
	return b, true, nil
}

// SetBan bans b.Addr; changed is false when it already was (nothing is
// written then).
func (tx *Tx) SetBan(b Ban) (changed bool, err error) {
	res, err := tx.exec(`INSERT INTO bans (addr, at, by, channel, reason) VALUES (?, ?, ?, ?, ?) ON CONFLICT (addr) DO NOTHING`,
		b.Addr, ms(tx.now), b.By, b.Channel, b.Reason)
	if err != nil {
		return false, fmt.Errorf("ban: %w", err)
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// ClearBan lifts addr's ban; changed is false when it had none.
func (tx *Tx) ClearBan(addr string) (changed bool, err error) {
	res, err := tx.exec(`DELETE FROM bans WHERE addr = ?`, addr)
	if err != nil {
		return false, fmt.Errorf("unban: %w", err)
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// Bans lists the bans, oldest first.
func (tx *Tx) Bans() ([]Ban, error) {
	rows, err := tx.tx.QueryContext(tx.ctx, `SELECT addr, at, by, channel, reason FROM bans ORDER BY at, addr`)
	if err != nil {
		return nil, fmt.Errorf("bans: %w", err)
	}
	defer rows.Close()
	out := []Ban{}
	for rows.Next() {
		var b Ban
		var at int64
		if err := rows.Scan(&b.Addr, &at, &b.By, &b.Channel, &b.Reason); err != nil {
			return nil, err
		}
		b.At = fromMS(at)
		out = append(out, b)
	}
	return out, rows.Err()
}

// PruneAudit deletes up to limit audit entries recorded more than age ago
// (by the store's clock), oldest first, leaving every entry whose id is
// keepFrom or more (0: no such bound): the entries whose copy still waits
// for the hub (AuditWaitingFrom). Like PruneMessages, nothing while the
// clock is not sane, and an entry recorded while it was not (audit times
// are not moved when the clock is set) is never old. The horizon moves
// up first: the database refuses any other delete.
func (tx *Tx) PruneAudit(age time.Duration, keepFrom int64, limit int) (int64, error) {
	if age <= 0 || !clock.Sane(tx.now) {
		return 0, nil
	}
	if keepFrom <= 0 {
		keepFrom = math.MaxInt64
	}
	rows, err := tx.tx.QueryContext(tx.ctx, `SELECT id FROM audit INDEXED BY audit_at
		WHERE at >= ? AND at < ? AND id < ? ORDER BY at, id LIMIT ?`, pruneFloor, ms(tx.now.Add(-age)), keepFrom, limit)
	if err != nil {
		return 0, fmt.Errorf("audit: %w", err)
	}
	var ids []any
	var top int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, err
		}
		ids, top = append(ids, id), max(top, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(ids) == 0 {
		return 0, err
	}
	if _, err := tx.exec(`UPDATE audit_horizon SET before = max(before, ?) WHERE id = 1`, top+1); err != nil {
		return 0, fmt.Errorf("audit horizon: %w", err)
	}
	res, err := tx.exec(`DELETE FROM audit WHERE id IN (?`+strings.Repeat(",?", len(ids)-1)+`)`, ids...)
	if err != nil {
		return 0, fmt.Errorf("audit: %w", err)
	}
	return res.RowsAffected()
}

// AuditWaitingFrom is the id of the oldest audit entry whose copy waits
// for the hub on topic, in its queue or set aside (0: none): the entries
// from it on are not pruned.
func (tx *Tx) AuditWaitingFrom(topic string) (int64, error) {
	var id sql.NullInt64
	err := tx.tx.QueryRowContext(tx.ctx, `SELECT min(CAST(json_extract(CAST(payload AS TEXT), '$.id') AS INTEGER)) FROM (
		SELECT payload FROM hub_queue WHERE topic = ?1 UNION ALL SELECT payload FROM hub_set_aside WHERE topic = ?1)
		WHERE json_valid(CAST(payload AS TEXT))`, topic).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("audit copies for the hub: %w", err)
	}
	return id.Int64, nil
}
