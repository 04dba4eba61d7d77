package store

import (
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/outpost-sms/outpost/store/clock"
)

// ErrBadTopic marks a topic no MQTT broker accepts for a publish: it is
// never put in the hub queue, where it would be refused again and again.
var ErrBadTopic = errors.New("not a valid MQTT topic to publish on")

// MaxTopicLen is MQTT's bound on a topic name, in bytes.
const MaxTopicLen = 65535

// CheckTopic says why topic cannot be published on (an error wrapping
// ErrBadTopic), or nil: empty, a wildcard ('+', '#'), NUL, invalid UTF-8,
// or longer than MaxTopicLen bytes.
func CheckTopic(topic string) error {
	bad := func(why string) error {
		shown := topic
		if len(shown) > 80 {
			shown = shown[:80] + "…"
		}
		return fmt.Errorf("topic %q: %w: %s", shown, ErrBadTopic, why)
	}
	switch {
	case topic == "":
		return bad("it is empty")
	case len(topic) > MaxTopicLen:
		return bad(fmt.Sprintf("%d bytes, more than MQTT's %d", len(topic), MaxTopicLen))
	case !utf8.ValidString(topic):
		return bad("it is not valid UTF-8")
	case strings.ContainsRune(topic, 0):
		return bad("it holds a NUL character")
	case strings.ContainsAny(topic, "+#"):
		return bad("it holds a wildcard ('+' or '#')")
	}
	return nil
}

// HubMessage is one MQTT message waiting for the hub to acknowledge it.
type HubMessage struct {
	ID        int64
	Topic     string
	Payload   []byte
	QoS       byte
	Retain    bool
	CreatedAt time.Time
	// Replace makes a retained message take the place of the retained
	// ones still queued on its topic (EnqueueHubLimited): for a state
	// whose earlier values the hub need not see. It is not stored.
	Replace bool
	// Own marks one of Outpost's own messages (sms/in, sms/status/…,
	// xform/…, modem/…, replies): EnqueueHubLimited never refuses it for
	// a full queue. Under DropOldest the oldest still make room for it;
	// when the policy refuses, or when it alone is larger than the byte
	// bound, it is queued past the bound (OverBound set, and counted in
	// HubStats.OverBound). Only devices' pass-through messages are
	// refused: their publisher keeps them and sends them again, where a
	// refused own message would be lost. It is not stored.
	Own bool
	// OverBound is set by EnqueueHubLimited when it queued an Own
	// message past the queue's bound.
	OverBound bool
	// DeliveryID is the delivery this message is the copy of (0: none,
	// as for status copies and pass-through): set by LinkHubDelivery,
	// read by HubBatch.
	DeliveryID int64
}

// EnqueueHub adds m to the hub queue, filling its ID. A topic CheckTopic
// refuses is an error (ErrBadTopic) and nothing is queued.
func (tx *Tx) EnqueueHub(m *HubMessage) error {
	if err := CheckTopic(m.Topic); err != nil {
		return err
	}
	if m.Payload == nil {
		m.Payload = []byte{}
	}
	return tx.insertHub([]*HubMessage{m})
}

// maxInsertRows bounds the rows of one INSERT (5 parameters each: SQLite
// takes 32,766 at most).
const maxInsertRows = 64

// insertHub stores msgs in the hub queue, fills their IDs, and counts
// them in hub_queue_stats once (a trigger updated the stats row once per
// message; migration 0009). The rows go in as few multi-row INSERTs as
// the binary digits of their count: each length a power of two up to
// maxInsertRows, so that at most seven statements are ever prepared.
func (tx *Tx) insertHub(msgs []*HubMessage) error {
	var size int64
	total := len(msgs)
	for len(msgs) > 0 {
		n := maxInsertRows
		for n > len(msgs) {
			n /= 2
		}
		ins, err := tx.stmt(`INSERT INTO hub_queue (topic, payload, qos, retain, created_at) VALUES (?, ?, ?, ?, ?)` +
			strings.Repeat(", (?, ?, ?, ?, ?)", n-1))
		if err != nil {
			return err
		}
		args := make([]any, 0, 5*n)
		for _, m := range msgs[:n] {
			if m.Payload == nil {
				m.Payload = []byte{}
			}
			args = append(args, m.Topic, m.Payload, m.QoS, m.Retain, ms(tx.now))
			size += int64(len(m.Payload))
		}
		res, err := ins.ExecContext(tx.ctx, args...)
		if err != nil {
			return err
		}
		// AUTOINCREMENT gives the rows of one statement consecutive ids,
		// in order, the last one the statement's last insert id.
		last, err := res.LastInsertId()
		if err != nil {
			return err
		}
		for i, m := range msgs[:n] {
			m.ID, m.CreatedAt = last-int64(n-1-i), tx.now
		}
		msgs = msgs[n:]
	}
	if total == 0 {
		return nil
	}
	// Counted before the update: a failure after an insert leaves the
	// bound above the truth, as it must be.
	if tx.write {
		tx.s.hubAtMost.add(int64(total), size)
	}
	up, err := tx.stmt(`UPDATE hub_queue_stats SET messages = messages + ?, bytes = bytes + ? WHERE id = 1`)
	if err != nil {
		return err
	}
	_, err = up.ExecContext(tx.ctx, total, size)
	return err
}

// HubBatch returns up to limit queued messages queued after the one with
// id after (0: from the oldest), oldest first.
func (tx *Tx) HubBatch(after int64, limit int) ([]HubMessage, error) {
	return tx.hubMessages(`SELECT id, topic, payload, qos, retain, created_at, COALESCE(delivery_id, 0) FROM hub_queue WHERE id > ? ORDER BY id LIMIT ?`, after, limit)
}

// hubMessages reads the hub messages a query selects (id, topic,
// payload, qos, retain, created_at, delivery_id).
func (tx *Tx) hubMessages(query string, args ...any) ([]HubMessage, error) {
	rows, err := tx.tx.QueryContext(tx.ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []HubMessage
	for rows.Next() {
		var m HubMessage
		var created int64
		if err := rows.Scan(&m.ID, &m.Topic, &m.Payload, &m.QoS, &m.Retain, &created, &m.DeliveryID); err != nil {
			return nil, err
		}
		m.CreatedAt = fromMS(created)
		out = append(out, m)
	}
	return out, rows.Err()
}

// HubBatchBytes is HubBatch bounded in bytes too: the messages whose
// payloads, added up oldest first, stay within maxBytes, and always the
// first one (alone if it is larger). Sizes are read without loading the
// payloads of the rows left out.
func (tx *Tx) HubBatchBytes(after int64, limit int, maxBytes int64) ([]HubMessage, error) {
	return tx.hubMessages(`SELECT id, topic, payload, qos, retain, created_at, COALESCE(delivery_id, 0) FROM hub_queue WHERE id IN (
		SELECT id FROM (SELECT id, length(payload) AS n, SUM(length(payload)) OVER (ORDER BY id) AS upto
			FROM hub_queue WHERE id > ? ORDER BY id LIMIT ?)
		WHERE upto <= ? OR upto = n) ORDER BY id`, after, limit, maxBytes)
}

// DeleteHub removes messages the hub acknowledged.
func (tx *Tx) DeleteHub(ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	_, err := tx.exec(`DELETE FROM hub_queue WHERE id IN (?`+strings.Repeat(",?", len(ids)-1)+`)`, args...)
	return err
}

// HubStats is the hub queue's size and what its limits cost so far.
type HubStats struct {
	Messages int64 `json:"messages"`
	Bytes    int64 `json:"bytes"`
	Dropped  int64 `json:"dropped"`
	Expired  int64 `json:"expired"`
	Refused  int64 `json:"refused"`
	// SetAside counts the messages the hub kept refusing, moved out of
	// the queue (HubSetAside lists the latest).
	SetAside int64 `json:"set_aside"`
	// OverBound counts Outpost's own messages queued past a full queue's
	// bound (HubMessage.Own): never refused, so the queue can hold more
	// than max_messages / max_bytes by them alone.
	OverBound int64 `json:"over_bound"`
	// Requeued counts the set-aside messages put back in the queue.
	Requeued int64 `json:"requeued"`
	// Latest is the latest messages set aside, newest first (filled by
	// status, not by HubQueueStats).
	Latest []HubSetAside `json:"set_aside_latest,omitempty"`
}

// HubQueueStats reads the queue's counters.
func (tx *Tx) HubQueueStats() (HubStats, error) {
	var st HubStats
	q, err := tx.stmt(`SELECT messages, bytes, dropped, expired, refused, set_aside, over_bound, requeued FROM hub_queue_stats WHERE id = 1`)
	if err != nil {
		return st, err
	}
	err = q.QueryRowContext(tx.ctx).Scan(&st.Messages, &st.Bytes, &st.Dropped, &st.Expired, &st.Refused, &st.SetAside, &st.OverBound, &st.Requeued)
	if err == nil && tx.write {
		// A read transaction's snapshot may be older than the bound.
		tx.s.hubAtMost.set(st.Messages, st.Bytes)
	}
	return st, err
}

// hubBound is at least what the hub queue holds, in messages and bytes:
// its size read in a write transaction, plus what was inserted since
// (insertHub). Only inserts make the queue larger, and all go through
// insertHub; what is deleted, and what a failed write did not insert,
// leave it above the truth, never below. It spares the read of the
// queue's size before each insert while the queue is far from its
// bounds.
type hubBound struct {
	mu       sync.Mutex
	ok       bool
	messages int64
	bytes    int64
}

func (h *hubBound) get() (messages, bytes int64, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.messages, h.bytes, h.ok
}

func (h *hubBound) set(messages, bytes int64) {
	h.mu.Lock()
	h.messages, h.bytes, h.ok = messages, bytes, true
	h.mu.Unlock()
}

func (h *hubBound) add(messages, bytes int64) {
	h.mu.Lock()
	h.messages += messages
	h.bytes += bytes
	h.mu.Unlock()
}

// fits says whether a queue of messages and bytes is within the bounds.
func (l HubLimits) fits(messages, bytes int64) bool {
	return (l.MaxMessages <= 0 || messages <= l.MaxMessages) && (l.MaxBytes <= 0 || bytes <= l.MaxBytes)
}

// HubSetAside is a message taken out of the hub queue because the hub
// kept refusing it.
type HubSetAside struct {
	ID         int64     `json:"id"`
	Topic      string    `json:"topic"`
	Bytes      int       `json:"bytes"`
	CreatedAt  time.Time `json:"created_at"`
	SetAsideAt time.Time `json:"set_aside_at"`
	Reason     string    `json:"reason"`
}

// MaxSetAside is how many set-aside messages are kept (the newest).
const MaxSetAside = 1000

// SetAsideHub moves message id out of the hub queue into the set-aside
// table with the reason, and counts it. It reports false when id is no
// longer queued (acknowledged, dropped or replaced meanwhile).
func (tx *Tx) SetAsideHub(id int64, reason string) (bool, error) {
	res, err := tx.exec(`INSERT INTO hub_set_aside (id, topic, payload, qos, retain, created_at, set_aside_at, reason, delivery_id)
		SELECT id, topic, payload, qos, retain, created_at, ?, ?, delivery_id FROM hub_queue WHERE id = ?`, ms(tx.now), reason, id)
	if err != nil {
		return false, err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return false, nil
	}
	var did int64
	if err := tx.tx.QueryRowContext(tx.ctx, `SELECT COALESCE(delivery_id, 0) FROM hub_queue WHERE id = ?`, id).Scan(&did); err != nil {
		return false, err
	}
	if err := tx.hubDeliveryChanged(did, Failed, "set aside: "+reason+"; outpost hub requeue puts it back"); err != nil {
		return false, err
	}
	if _, err := tx.exec(`DELETE FROM hub_queue WHERE id = ?`, id); err != nil {
		return false, err
	}
	if _, err := tx.exec(`UPDATE hub_queue_stats SET set_aside = set_aside + 1 WHERE id = 1`); err != nil {
		return false, err
	}
	_, err = tx.exec(`DELETE FROM hub_set_aside WHERE id < (SELECT MIN(id) FROM (SELECT id FROM hub_set_aside ORDER BY id DESC LIMIT ?))`, MaxSetAside)
	return true, err
}

// HubSetAsideLatest lists up to limit set-aside messages, newest first
// (topics longer than 200 bytes cut short).
func (tx *Tx) HubSetAsideLatest(limit int) ([]HubSetAside, error) {
	rows, err := tx.tx.QueryContext(tx.ctx, `SELECT id, substr(topic, 1, 200), length(topic), length(payload), created_at, set_aside_at, reason
		FROM hub_set_aside ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []HubSetAside
	for rows.Next() {
		var a HubSetAside
		var topicLen int
		var created, at int64
		if err := rows.Scan(&a.ID, &a.Topic, &topicLen, &a.Bytes, &created, &at, &a.Reason); err != nil {
			return nil, err
		}
		if topicLen > len([]rune(a.Topic)) {
			a.Topic += "…"
		}
		a.CreatedAt, a.SetAsideAt = fromMS(created), fromMS(at)
		out = append(out, a)
	}
	return out, rows.Err()
}

// HubRequeued is a set-aside message put back in the hub queue.
type HubRequeued struct {
	ID      int64  `json:"id"`       // its id while set aside (its old queue id)
	QueueID int64  `json:"queue_id"` // its new id in the queue
	Topic   string `json:"topic"`
}

// RequeueHubSetAside moves set-aside messages back to the end of the hub
// queue, with new ids, in the order they were first queued: the ones in
// ids, or every one with all. An id that is not set aside is an error
// wrapping ErrNotFound, and nothing moves. They are queued whatever the
// queue's bounds (never refused, nothing dropped for them: at most
// MaxSetAside, asked for by the operator), their age counted from now,
// and counted in HubStats.Requeued. A message the hub still refuses is
// set aside again after two drops.
func (tx *Tx) RequeueHubSetAside(ids []int64, all bool) ([]HubRequeued, error) {
	if !all {
		for _, id := range ids {
			var n int
			if err := tx.tx.QueryRowContext(tx.ctx, `SELECT COUNT(*) FROM hub_set_aside WHERE id = ?`, id).Scan(&n); err != nil {
				return nil, err
			}
			if n == 0 {
				return nil, fmt.Errorf("no message set aside with id %d: %w", id, ErrNotFound)
			}
		}
	}
	q, args := `SELECT id, topic, payload, qos, retain, COALESCE(delivery_id, 0) FROM hub_set_aside ORDER BY id`, []any(nil)
	if !all {
		if len(ids) == 0 {
			return nil, nil
		}
		q = `SELECT id, topic, payload, qos, retain, COALESCE(delivery_id, 0) FROM hub_set_aside WHERE id IN (?` + strings.Repeat(",?", len(ids)-1) + `) ORDER BY id`
		for _, id := range ids {
			args = append(args, id)
		}
	}
	rows, err := tx.tx.QueryContext(tx.ctx, q, args...)
	if err != nil {
		return nil, err
	}
	var ms []HubMessage
	for rows.Next() {
		var m HubMessage
		if err := rows.Scan(&m.ID, &m.Topic, &m.Payload, &m.QoS, &m.Retain, &m.DeliveryID); err != nil {
			rows.Close()
			return nil, err
		}
		ms = append(ms, m)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([]HubRequeued, 0, len(ms))
	for _, m := range ms {
		old := m.ID
		// A topic the hub can never take was never queued nor set aside
		// (CheckTopic); EnqueueHub checks again.
		if err := tx.EnqueueHub(&m); err != nil {
			return nil, fmt.Errorf("set-aside message %d: %w", old, err)
		}
		if _, err := tx.exec(`DELETE FROM hub_set_aside WHERE id = ?`, old); err != nil {
			return nil, err
		}
		if m.DeliveryID != 0 {
			if err := tx.LinkHubDelivery(m.ID, m.DeliveryID); err != nil {
				return nil, err
			}
			if err := tx.hubDeliveryChanged(m.DeliveryID, Queued, "put back in the hub queue (outpost hub requeue)"); err != nil {
				return nil, err
			}
		}
		out = append(out, HubRequeued{ID: old, QueueID: m.ID, Topic: m.Topic})
	}
	if len(out) > 0 {
		if _, err := tx.exec(`UPDATE hub_queue_stats SET requeued = requeued + ? WHERE id = 1`, len(out)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// dropReason is what a delivery whose hub copy made room says.
const dropReason = "not sent: dropped from the hub queue, full (hub.max_messages / hub.max_bytes), to make room for a newer message (when_full = drop_oldest)"

// HubLimits bound the hub queue (0: no bound).
type HubLimits struct {
	MaxMessages, MaxBytes int64
	// DropOldest makes room by dropping the oldest messages; otherwise a
	// new message is refused when the queue is full.
	DropOldest bool
}

// EnqueueHubLimited adds m within the limits, first removing what it
// replaces (HubMessage.Replace). It returns false (and
// counts a refusal) when the queue is full and the policy refuses, or
// when m alone is larger than the byte limit; dropped is how many of the
// oldest were dropped to make room. An Own message is never refused: it is
// queued past the bound instead (m.OverBound, counted).
func (tx *Tx) EnqueueHubLimited(m *HubMessage, l HubLimits) (accepted bool, dropped int, err error) {
	if err := CheckTopic(m.Topic); err != nil {
		return false, 0, err
	}
	if m.Replace && m.Retain {
		// A row already handed to the hub is deleted too: its PUBACK then
		// deletes nothing, and the new value follows it.
		if _, err := tx.exec(`DELETE FROM hub_queue WHERE topic = ? AND retain = 1`, m.Topic); err != nil {
			return false, 0, err
		}
	}
	st, err := tx.HubQueueStats()
	if err != nil {
		return false, 0, err
	}
	size := int64(len(m.Payload))
	full := func() bool {
		return l.MaxMessages > 0 && st.Messages+1 > l.MaxMessages || l.MaxBytes > 0 && st.Bytes+size > l.MaxBytes
	}
	if full() && (!l.DropOldest || l.MaxBytes > 0 && size > l.MaxBytes) {
		if m.Own {
			if _, err := tx.exec(`UPDATE hub_queue_stats SET over_bound = over_bound + 1 WHERE id = 1`); err != nil {
				return false, 0, err
			}
			m.OverBound = true
			return true, 0, tx.EnqueueHub(m)
		}
		_, err := tx.exec(`UPDATE hub_queue_stats SET refused = refused + 1 WHERE id = 1`)
		return false, 0, err
	}
	for full() && st.Messages > 0 {
		var id, n, did int64
		if err := tx.tx.QueryRowContext(tx.ctx, `SELECT id, length(payload), COALESCE(delivery_id, 0) FROM hub_queue ORDER BY id LIMIT 1`).Scan(&id, &n, &did); err != nil {
			return false, dropped, err
		}
		if _, err := tx.exec(`DELETE FROM hub_queue WHERE id = ?`, id); err != nil {
			return false, dropped, err
		}
		if err := tx.hubDeliveryChanged(did, Failed, dropReason); err != nil {
			return false, dropped, err
		}
		st.Messages, st.Bytes = st.Messages-1, st.Bytes-n
		dropped++
	}
	if dropped > 0 {
		if _, err := tx.exec(`UPDATE hub_queue_stats SET dropped = dropped + ? WHERE id = 1`, dropped); err != nil {
			return false, dropped, err
		}
	}
	return true, dropped, tx.EnqueueHub(m)
}

// EnqueueHubBatch is EnqueueHubLimited for several messages, in order,
// reading the queue's counters once and inserting with one prepared
// statement: what a batch of devices' pass-through messages costs (the
// counters' query and the INSERT's parse were most of a message's cost).
// A message that replaces others, or that meets a full queue, goes
// through EnqueueHubLimited. dropped[i] is how many of the oldest made
// room for msgs[i].
func (tx *Tx) EnqueueHubBatch(msgs []*HubMessage, l HubLimits) (accepted []bool, dropped []int, err error) {
	accepted, dropped = make([]bool, len(msgs)), make([]int, len(msgs))
	// Far from the bounds the queue's exact size is not needed: one
	// statement less per commit (a tenth of the committer's work for a
	// device publishing at full speed).
	var st HubStats
	var size int64
	for _, m := range msgs {
		size += int64(len(m.Payload))
	}
	if n, b, ok := tx.s.hubAtMost.get(); ok && tx.write && l.fits(n+int64(len(msgs)), b+size) {
		st.Messages, st.Bytes = n, b
	} else if st, err = tx.HubQueueStats(); err != nil {
		return nil, nil, err
	}
	// The messages that fit go in together, up to one that needs the
	// bound's policy (or replaces a retained one).
	var run []*HubMessage
	flush := func() error {
		err := tx.insertHub(run)
		run = run[:0]
		return err
	}
	for i, m := range msgs {
		size := int64(len(m.Payload))
		full := l.MaxMessages > 0 && st.Messages+1 > l.MaxMessages || l.MaxBytes > 0 && st.Bytes+size > l.MaxBytes
		if full || m.Replace && m.Retain {
			if err := flush(); err != nil {
				return nil, nil, err
			}
			a, d, err := tx.EnqueueHubLimited(m, l)
			if err != nil {
				return nil, nil, err
			}
			accepted[i], dropped[i] = a, d
			if st, err = tx.HubQueueStats(); err != nil {
				return nil, nil, err
			}
			continue
		}
		run = append(run, m)
		st.Messages, st.Bytes = st.Messages+1, st.Bytes+size
		accepted[i] = true
	}
	if err := flush(); err != nil {
		return nil, nil, err
	}
	return accepted, dropped, nil
}

// ExpireHub drops the messages queued before before and counts them.
// The queue is in time order, so what is too old is its oldest part: it
// is found from the oldest row on, and a queue with nothing too old costs
// one row read, not a scan (the uplink asks every second, also with a
// million messages waiting). After the clock went back, a message stamped
// "older" behind a younger one waits until those before it go. With a
// sane before, a message stamped while the clock was not sane (and not
// yet rebased, see package clock) is never too old, nor what follows it.
func (tx *Tx) ExpireHub(before time.Time) (int64, error) {
	end := int64(math.MaxInt64)
	q, args := `SELECT id FROM hub_queue WHERE created_at >= ? ORDER BY id LIMIT 1`, []any{ms(before)}
	if clock.Sane(before) {
		q, args = `SELECT id FROM hub_queue WHERE created_at >= ? OR created_at < ? ORDER BY id LIMIT 1`, []any{ms(before), floorMS()}
	}
	err := tx.tx.QueryRowContext(tx.ctx, q, args...).Scan(&end)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, err
	}
	// The deliveries whose copies are too old end with them: the
	// delete returns their ids (one statement, prepared once: the uplink
	// asks every second, and nothing is too old most of the time).
	del, err := tx.stmt(`DELETE FROM hub_queue WHERE id < ? RETURNING delivery_id`)
	if err != nil {
		return 0, err
	}
	rows, err := del.QueryContext(tx.ctx, end)
	if err != nil {
		return 0, err
	}
	var n int64
	var dids []int64
	for rows.Next() {
		var d sql.NullInt64
		if err := rows.Scan(&d); err != nil {
			rows.Close()
			return 0, err
		}
		n++
		if d.Valid {
			dids = append(dids, d.Int64)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	for _, d := range dids {
		if err := tx.hubDeliveryChanged(d, Expired, "not sent: waited in the hub queue longer than its age limit (hub.max_age)"); err != nil {
			return 0, err
		}
	}
	if n > 0 {
		_, err = tx.exec(`UPDATE hub_queue_stats SET expired = expired + ? WHERE id = 1`, n)
	}
	return n, err
}
