package store

import (
	"bytes"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/outpost-sms/outpost/store/clock"
)

// InboundPart is one stored part of a concatenated inbound SMS.
type InboundPart struct {
	ID         int64
	GroupKey   string
	Seq        int
	Total      int
	PDU        []byte
	ReceivedAt time.Time
	MessageID  string
}

// AddInboundPart stores one part. It reports dup when the same part (same
// group, sequence number and bytes) is already stored, for example because
// the SIM slot was read again before it was deleted. A different part with
// the same group and sequence number belongs to a new message reusing the
// reference: the finished group it collides with is forgotten.
func (tx *Tx) AddInboundPart(p InboundPart) (dup bool, err error) {
	var old []byte
	var msgID sql.NullString
	err = tx.tx.QueryRowContext(tx.ctx, `SELECT pdu, message_id FROM inbound_parts WHERE group_key = ? AND seq = ?`, p.GroupKey, p.Seq).Scan(&old, &msgID)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return false, err
	case bytes.Equal(old, p.PDU):
		return true, nil
	case msgID.Valid:
		if _, err := tx.exec(`DELETE FROM inbound_parts WHERE group_key = ? AND message_id IS NOT NULL`, p.GroupKey); err != nil {
			return false, err
		}
	default:
		// An unfinished group got a different part for the same slot: the
		// reference was reused before the old message completed. Keep the
		// newer one; the replaced part is reported as a quirk by the caller.
		if _, err := tx.exec(`DELETE FROM inbound_parts WHERE group_key = ? AND seq = ?`, p.GroupKey, p.Seq); err != nil {
			return false, err
		}
	}
	if p.ReceivedAt.IsZero() {
		p.ReceivedAt = tx.now
	}
	_, err = tx.exec(`INSERT INTO inbound_parts (group_key, seq, total, pdu, received_at) VALUES (?, ?, ?, ?, ?)`,
		p.GroupKey, p.Seq, p.Total, p.PDU, ms(p.ReceivedAt))
	if err != nil {
		return false, fmt.Errorf("insert part: %w", err)
	}
	return false, nil
}

// OpenParts returns the unfinished parts of a group, by sequence number.
func (tx *Tx) OpenParts(groupKey string) ([]InboundPart, error) {
	return tx.queryParts(`SELECT id, group_key, seq, total, pdu, received_at, COALESCE(message_id, '') FROM inbound_parts
		WHERE group_key = ? AND message_id IS NULL ORDER BY seq`, groupKey)
}

// StaleGroups lists the group keys with unfinished parts of which the
// newest arrived before t. With a sane t, parts stamped while the clock
// was not sane (not yet rebased, see package clock) are never stale.
func (tx *Tx) StaleGroups(before time.Time) ([]string, error) {
	lo := int64(math.MinInt64)
	if clock.Sane(before) {
		lo = floorMS()
	}
	rows, err := tx.tx.QueryContext(tx.ctx, `SELECT group_key FROM inbound_parts WHERE message_id IS NULL
		GROUP BY group_key HAVING MAX(received_at) < ? AND MAX(received_at) >= ?`, ms(before), lo)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var keys []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, rows.Err()
}

// Reassembly counts the messages waiting for parts and the parts in.
type Reassembly struct {
	Messages int `json:"messages"`
	Parts    int `json:"parts"`
}

// OpenReassembly counts unfinished groups of parts.
func (tx *Tx) OpenReassembly() (Reassembly, error) {
	var r Reassembly
	err := tx.tx.QueryRowContext(tx.ctx, `SELECT COUNT(DISTINCT group_key), COUNT(*) FROM inbound_parts WHERE message_id IS NULL`).Scan(&r.Messages, &r.Parts)
	return r, err
}

// FinishParts marks a group's unfinished parts as belonging to a message.
func (tx *Tx) FinishParts(groupKey, messageID string) error {
	_, err := tx.exec(`UPDATE inbound_parts SET message_id = ? WHERE group_key = ? AND message_id IS NULL`, messageID, groupKey)
	return err
}

// ForgetFinishedParts deletes parts of finished messages older than t; they
// are kept only to recognise a part read twice from a SIM.
func (tx *Tx) ForgetFinishedParts(before time.Time) (int64, error) {
	res, err := tx.exec(`DELETE FROM inbound_parts WHERE message_id IS NOT NULL AND received_at < ?`, ms(before))
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (tx *Tx) queryParts(q string, args ...any) ([]InboundPart, error) {
	rows, err := tx.tx.QueryContext(tx.ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []InboundPart
	for rows.Next() {
		var p InboundPart
		var at int64
		if err := rows.Scan(&p.ID, &p.GroupKey, &p.Seq, &p.Total, &p.PDU, &at, &p.MessageID); err != nil {
			return nil, err
		}
		p.ReceivedAt = fromMS(at)
		out = append(out, p)
	}
	return out, rows.Err()
}

// SentPart is one part of an outbound SMS accepted by a modem.
type SentPart struct {
	DeliveryID int64
	Seq        int
	Total      int
	Modem      string
	MR         int
	Recipient  string
	State      string
	Status     *int
	SentAt     time.Time
}

// RecordSentPart stores the message reference a modem returned for a part.
func (tx *Tx) RecordSentPart(p SentPart) error {
	if p.State == "" {
		p.State = Sent
	}
	_, err := tx.exec(`INSERT INTO sent_parts (delivery_id, seq, total, modem, mr, recipient, state, sent_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (delivery_id, seq) DO UPDATE SET modem = excluded.modem, mr = excluded.mr, state = excluded.state, status = NULL, sent_at = excluded.sent_at`,
		p.DeliveryID, p.Seq, p.Total, p.Modem, p.MR, p.Recipient, p.State, ms(tx.now))
	if err == nil {
		tx.hookSentPart(p.Modem)
	}
	return err
}

// SentParts lists the parts of a delivery already accepted by a modem.
func (tx *Tx) SentParts(deliveryID int64) ([]SentPart, error) {
	rows, err := tx.tx.QueryContext(tx.ctx, `SELECT delivery_id, seq, total, modem, mr, recipient, state, status, sent_at FROM sent_parts WHERE delivery_id = ? ORDER BY seq`, deliveryID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []SentPart
	for rows.Next() {
		var p SentPart
		var st sql.NullInt64
		var at int64
		if err := rows.Scan(&p.DeliveryID, &p.Seq, &p.Total, &p.Modem, &p.MR, &p.Recipient, &p.State, &st, &at); err != nil {
			return nil, err
		}
		if st.Valid {
			v := int(st.Int64)
			p.Status = &v
		}
		p.SentAt = fromMS(at)
		out = append(out, p)
	}
	return out, rows.Err()
}

// MatchSentPart finds the most recent part sent through modem with message
// reference mr whose recipient matches (by its last digits, since a status
// report may carry the number in national form).
func (tx *Tx) MatchSentPart(modem string, mr int, recipient string) (SentPart, error) {
	rows, err := tx.tx.QueryContext(tx.ctx, `SELECT delivery_id, seq, recipient FROM sent_parts WHERE modem = ? AND mr = ? ORDER BY sent_at DESC LIMIT 8`, modem, mr)
	if err != nil {
		return SentPart{}, err
	}
	type cand struct {
		did       int64
		seq       int
		recipient string
	}
	var cs []cand
	for rows.Next() {
		var c cand
		if err := rows.Scan(&c.did, &c.seq, &c.recipient); err != nil {
			rows.Close()
			return SentPart{}, err
		}
		cs = append(cs, c)
	}
	rows.Close()
	for _, c := range cs {
		if recipient == "" || sameNumber(c.recipient, recipient) {
			parts, err := tx.SentParts(c.did)
			if err != nil {
				return SentPart{}, err
			}
			for _, p := range parts {
				if p.Seq == c.seq {
					return p, nil
				}
			}
		}
	}
	return SentPart{}, fmt.Errorf("sent part with reference %d to %s on %s: %w", mr, recipient, modem, ErrNotFound)
}

// SetSentPartState records the outcome a status report gave for a part.
func (tx *Tx) SetSentPartState(deliveryID int64, seq int, state string, status int) error {
	_, err := tx.exec(`UPDATE sent_parts SET state = ?, status = ? WHERE delivery_id = ? AND seq = ?`, state, status, deliveryID, seq)
	return err
}

// sameNumber compares two phone numbers by their digits, allowing one to
// be the national form of the other (same last 9 digits).
func sameNumber(a, b string) bool {
	da, db := digits(a), digits(b)
	if da == db {
		return true
	}
	n := 9
	if len(da) < n || len(db) < n {
		return false
	}
	return da[len(da)-n:] == db[len(db)-n:]
}

func digits(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			b = append(b, s[i])
		}
	}
	return string(b)
}

// AddOrphanReport keeps a status report (its TP-ST) that matched no sent
// part yet.
func (tx *Tx) AddOrphanReport(modem string, mr int, recipient string, status int) error {
	_, err := tx.exec(`INSERT INTO orphan_reports (modem, mr, recipient, status, received_at) VALUES (?, ?, ?, ?, ?)`,
		modem, mr, recipient, status, ms(tx.now))
	return err
}

// TakeOrphanReport removes and returns the newest orphan report for this
// modem, reference and recipient received since the given time.
func (tx *Tx) TakeOrphanReport(modem string, mr int, recipient string, since time.Time) (status int, ok bool, err error) {
	rows, err := tx.tx.QueryContext(tx.ctx, `SELECT id, recipient, status FROM orphan_reports WHERE modem = ? AND mr = ? AND received_at >= ? ORDER BY id DESC`,
		modem, mr, ms(since))
	if err != nil {
		return 0, false, err
	}
	var id int64
	for rows.Next() {
		var r string
		var st int
		var rid int64
		if err := rows.Scan(&rid, &r, &st); err != nil {
			rows.Close()
			return 0, false, err
		}
		if !ok && (r == "" || sameNumber(r, recipient)) {
			id, status, ok = rid, st, true
		}
	}
	rows.Close()
	if !ok {
		return 0, false, rows.Err()
	}
	_, err = tx.exec(`DELETE FROM orphan_reports WHERE id = ?`, id)
	return status, ok, err
}

// ForgetOrphanReports deletes orphan reports received before t (reports
// for messages this gateway never recorded) and returns how many.
func (tx *Tx) ForgetOrphanReports(before time.Time) (int64, error) {
	res, err := tx.exec(`DELETE FROM orphan_reports WHERE received_at < ?`, ms(before))
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
