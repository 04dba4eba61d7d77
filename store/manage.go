package store

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/outpost-sms/outpost/store/clock"
)

// ErrInvalid is a request the store refuses as it is (a bad cursor, a
// mark that does not apply).
var ErrInvalid = errors.New("invalid")

// Filter selects messages for ListMessages. Zero fields select all.
type Filter struct {
	Direction string // In, Out
	// State is a message's state (inbound: complete, incomplete,
	// undecodable) or any of its deliveries' (queued, failed…); also
	// read, unread, handled, unhandled (inbound messages marked so).
	State  string
	Number string // the peer, or a delivery's recipient
	Tag    string
	Since  time.Time
	Limit  int
	// Cursor is ListMessages' next from an earlier page: the messages
	// after the last one it returned.
	Cursor string
}

// encodeCursor makes the opaque cursor after the message m.
func encodeCursor(m Message) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(ms(m.CreatedAt), 10) + "," + m.ID))
}

func decodeCursor(c string) (int64, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err == nil {
		at, id, ok := strings.Cut(string(b), ",")
		n, perr := strconv.ParseInt(at, 10, 64)
		if ok && perr == nil && id != "" {
			return n, id, nil
		}
	}
	return 0, "", fmt.Errorf("%w: cursor %q is not one a listing returned", ErrInvalid, c)
}

// ListMessages lists messages newest first, filtered by f, and returns the
// cursor of the next page ("" when this one is the last). A cursor stays
// valid while messages arrive: the next page starts after the last message
// seen, whatever came in since.
func (tx *Tx) ListMessages(f Filter) ([]Message, string, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	var conds []string
	var args []any
	if f.Direction != "" {
		conds, args = append(conds, `direction = ?`), append(args, f.Direction)
	}
	switch f.State {
	case "":
	case "read", "handled":
		conds = append(conds, f.State+` = 1`)
	case "unread", "unhandled":
		conds = append(conds, `direction = 'in' AND `+strings.TrimPrefix(f.State, "un")+` = 0`)
	default:
		conds = append(conds, `(state = ? OR EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = messages.id AND d.state = ?))`)
		args = append(args, f.State, f.State)
	}
	if f.Number != "" {
		conds = append(conds, `(peer = ? OR id IN (SELECT message_id FROM deliveries WHERE recipient = ?))`)
		args = append(args, f.Number, f.Number)
	}
	if f.Tag != "" {
		conds = append(conds, `instr(',' || tags || ',', ?) > 0`)
		args = append(args, ","+f.Tag+",")
	}
	if !f.Since.IsZero() {
		conds, args = append(conds, `created_at >= ?`), append(args, ms(f.Since))
	}
	if f.Cursor != "" {
		at, id, err := decodeCursor(f.Cursor)
		if err != nil {
			return nil, "", err
		}
		conds = append(conds, `(created_at < ? OR created_at = ? AND id < ?)`)
		args = append(args, at, at, id)
	}
	q := `SELECT ` + messageCols + ` FROM messages`
	if len(conds) > 0 {
		q += ` WHERE ` + strings.Join(conds, ` AND `)
	}
	q += ` ORDER BY created_at DESC, id DESC LIMIT ?`
	rows, err := tx.tx.QueryContext(tx.ctx, q, append(args, f.Limit+1)...)
	if err != nil {
		return nil, "", err
	}
	defer rows.Close()
	var out []Message
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return nil, "", err
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, "", err
	}
	next := ""
	if len(out) > f.Limit {
		out = out[:f.Limit]
		next = encodeCursor(out[len(out)-1])
	}
	return out, next, nil
}

// Mark is what MarkMessage does to a message.
type Mark struct {
	Read    bool   `json:"read,omitempty"`
	Handled bool   `json:"handled,omitempty"`
	Tag     string `json:"tag,omitempty"`
}

// MarkMessage marks an inbound message read and/or handled and adds a tag
// to any message, saying who did it in its history. ErrNotFound for an
// unknown message; ErrInvalid for read/handled on an outbound one, a bad
// tag, or nothing to do.
func (tx *Tx) MarkMessage(id string, mk Mark, by string) (Message, error) {
	m, err := tx.Message(id)
	if err != nil {
		return m, err
	}
	if !mk.Read && !mk.Handled && mk.Tag == "" {
		return m, fmt.Errorf("%w: nothing to mark (read, handled or a tag)", ErrInvalid)
	}
	if (mk.Read || mk.Handled) && m.Direction != In {
		return m, fmt.Errorf("%w: message %s is outbound: only an inbound message is marked read or handled", ErrInvalid, id)
	}
	if mk.Tag != "" && (strings.ContainsAny(mk.Tag, ", \t\r\n") || len(mk.Tag) > 64) {
		return m, fmt.Errorf("%w: tag %q: a tag is one word of at most 64 bytes, without a comma or a space", ErrInvalid, mk.Tag)
	}
	var did []string
	if mk.Read {
		did = append(did, "read")
		if _, err := tx.exec(`UPDATE messages SET read = 1 WHERE id = ?`, id); err != nil {
			return m, err
		}
	}
	if mk.Handled {
		did = append(did, "handled")
		if _, err := tx.exec(`UPDATE messages SET handled = 1 WHERE id = ?`, id); err != nil {
			return m, err
		}
	}
	if mk.Tag != "" && !contains(m.Tags, mk.Tag) {
		did = append(did, "tagged "+mk.Tag)
		if _, err := tx.exec(`UPDATE messages SET tags = ? WHERE id = ?`, strings.Join(append(m.Tags, mk.Tag), ","), id); err != nil {
			return m, err
		}
	}
	if len(did) > 0 {
		if err := tx.AppendEvent(id, 0, "marked", strings.Join(did, ", ")+" by "+by); err != nil {
			return m, err
		}
	}
	return tx.Message(id)
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// DeleteMessage deletes a message with its deliveries, their parts and
// hub copies, its inbound parts and its history. ErrNotFound for an
// unknown message; ErrWrongState while a delivery is being sent.
func (tx *Tx) DeleteMessage(id string) error {
	ds, err := tx.outDeliveries(id)
	if err != nil {
		return err
	}
	for _, d := range ds {
		if d.State == Sending {
			return fmt.Errorf("%w: message %s is being sent right now (%s %s): delete it once the attempt ends, or cancel it first",
				ErrWrongState, id, d.Connector, d.Recipient)
		}
	}
	_, err = tx.deleteMessages([]string{id})
	return err
}

// deleteMessages deletes the messages ids and everything of theirs; it
// returns how many messages it deleted.
func (tx *Tx) deleteMessages(ids []string) (int64, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	in := `(?` + strings.Repeat(",?", len(ids)-1) + `)`
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := tx.tx.QueryContext(tx.ctx, `SELECT id FROM deliveries WHERE message_id IN `+in, args...)
	if err != nil {
		return 0, err
	}
	var dids []int64
	for rows.Next() {
		var d int64
		if err := rows.Scan(&d); err != nil {
			rows.Close()
			return 0, err
		}
		dids = append(dids, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	if err := tx.RemoveHubCopies(dids); err != nil {
		return 0, err
	}
	for _, q := range []string{
		`DELETE FROM sent_parts WHERE delivery_id IN (SELECT id FROM deliveries WHERE message_id IN ` + in + `)`,
		`DELETE FROM deliveries WHERE message_id IN ` + in,
		`DELETE FROM events WHERE message_id IN ` + in,
		`DELETE FROM inbound_parts WHERE message_id IN ` + in,
		`DELETE FROM email_threads WHERE message_id IN ` + in,
		`DELETE FROM xmpp_chats WHERE message_id IN ` + in,
	} {
		if _, err := tx.exec(q, args...); err != nil {
			return 0, fmt.Errorf("delete: %w", err)
		}
	}
	res, err := tx.exec(`DELETE FROM messages WHERE id IN `+in, args...)
	if err != nil {
		return 0, fmt.Errorf("delete messages: %w", err)
	}
	return res.RowsAffected()
}

// unfinished is true of a message with a delivery still to go.
const unfinished = `EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = messages.id AND d.state IN ('queued', 'sending', 'scheduled'))`

// pruneFloor is before any Outpost ran: a time before it was recorded
// while the clock was not set (the rebase, see package clock, should have
// moved it) and is never taken as old. It is not clock.Floor, the build
// date: a message an earlier build stored a month before this build is a
// month old.
var pruneFloor = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()

// PruneMessages deletes up to limit messages created more than age ago
// (by the store's clock) that are finished (no delivery queued, sending or
// scheduled), oldest first, with everything of theirs. While the clock is
// not sane (a box that booted in 1970) it deletes nothing, and a time
// recorded while it was not is never old. It returns how many it deleted.
func (tx *Tx) PruneMessages(age time.Duration, limit int) (int64, error) {
	if age <= 0 || !clock.Sane(tx.now) {
		return 0, nil
	}
	cut := ms(tx.now.Add(-age))
	rows, err := tx.tx.QueryContext(tx.ctx, `SELECT id FROM messages INDEXED BY messages_created
		WHERE created_at >= ? AND created_at < ? AND NOT `+unfinished+` ORDER BY created_at, id LIMIT ?`, pruneFloor, cut, limit)
	if err != nil {
		return 0, err
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	return tx.deleteMessages(ids)
}

// PruneEvents deletes up to limit history entries older than age of
// messages that are finished (the history of one still going stays
// whole). Like PruneMessages, nothing while the clock is not sane.
func (tx *Tx) PruneEvents(age time.Duration, limit int) (int64, error) {
	if age <= 0 || !clock.Sane(tx.now) {
		return 0, nil
	}
	res, err := tx.exec(`DELETE FROM events WHERE id IN (SELECT e.id FROM events e INDEXED BY events_at
		WHERE e.at >= ? AND e.at < ? AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = e.message_id AND d.state IN ('queued', 'sending', 'scheduled'))
		ORDER BY e.at LIMIT ?)`, pruneFloor, ms(tx.now.Add(-age)), limit)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// Waiting is how many writes wait for the committer: a background job
// (the pruner) holds back while others do.
func (s *Store) Waiting() int { return len(s.writes) }
