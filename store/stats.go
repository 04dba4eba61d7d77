package store

import (
	"database/sql"
	"sort"
	"time"
)

// Statistics (outpost stats): read-only queries over a time window, each
// on an index (migration 0020: messages_from, sent_parts_sent; and
// messages_created, messages_direction_created, deliveries_recipient),
// never a scan of a whole table.

// Day is the traffic of one address on one day (in Location).
type Day struct {
	Day string `json:"day"` // 2006-01-02
	In  int    `json:"in"`
	Out int    `json:"out"`
}

// SenderStats is the traffic of one address since a time: what it sent
// (In: messages whose sender it is), what was sent to it (Out: deliveries
// to it), per day, and how those deliveries ended.
type SenderStats struct {
	In   int   `json:"in"`
	Out  int   `json:"out"`
	Days []Day `json:"days"`
	// LastSeen is when its last message came in (at any time, not only
	// in the window); zero if never.
	LastSeen time.Time `json:"last_seen,omitzero"`
	// Among the deliveries to it that are finished: Succeeded (sent or
	// delivered) and Failed (failed or expired); cancelled ones are
	// neither. SuccessRate is Succeeded / (Succeeded + Failed), nil
	// when none is finished.
	Succeeded   int      `json:"succeeded"`
	Failed      int      `json:"failed"`
	Pending     int      `json:"pending"`
	Cancelled   int      `json:"cancelled,omitempty"`
	SuccessRate *float64 `json:"success_rate,omitempty"`
	// ToSent is the average time from accepted (or, for a scheduled
	// message, its time) to sent, the last part handed to the modem
	// (or the destination's acknowledgement, for a connector with no
	// parts), over SentTimed deliveries that got that far. ToDelivered
	// is the average to delivered (an SMS's status report, or the
	// destination's acknowledgement), over DeliveredTimed deliveries.
	ToSentMS       *int64 `json:"avg_to_sent_ms,omitempty"`
	SentTimed      int    `json:"sent_timed"`
	ToDeliveredMS  *int64 `json:"avg_to_delivered_ms,omitempty"`
	DeliveredTimed int    `json:"delivered_timed"`
}

// ModemStats is what one modem sent and received since a time.
type ModemStats struct {
	Modem            string `json:"modem"`
	MessagesSent     int    `json:"messages_sent"`
	PartsSent        int    `json:"parts_sent"`
	MessagesReceived int    `json:"messages_received"`
	PartsReceived    int    `json:"parts_received"`
	// PartsFailed are parts the network reported failed; of the
	// messages (deliveries) it sent a part of, Succeeded ended sent or
	// delivered, Failed failed or expired.
	PartsFailed int      `json:"parts_failed"`
	Succeeded   int      `json:"succeeded"`
	Failed      int      `json:"failed"`
	SuccessRate *float64 `json:"success_rate,omitempty"`
}

// ChannelStats is the traffic of one channel since a time: In, messages
// that came in on it (an SMS received, a send request by HTTP, the CLI,
// MQTT, mail, the hub…); Out, deliveries through its connector (SMS sent,
// mails, publishes, webhook events); Failed, those that failed or
// expired.
type ChannelStats struct {
	Channel     string   `json:"channel"`
	In          int      `json:"in"`
	Out         int      `json:"out"`
	Succeeded   int      `json:"succeeded"`
	Failed      int      `json:"failed"`
	Pending     int      `json:"pending"`
	SuccessRate *float64 `json:"success_rate,omitempty"`
}

// The statistics' queries (statsQueries lists them, for the test of their plans).
const (
	qSenderIn = `SELECT created_at FROM messages INDEXED BY messages_from
			WHERE from_addr = ? AND created_at >= ?`
	qSenderLast = `SELECT MAX(created_at) FROM messages INDEXED BY messages_from WHERE from_addr = ?`
	qSenderOut  = `SELECT d.state, m.created_at, m.not_before, d.updated_at,
				(SELECT MAX(p.sent_at) FROM sent_parts p WHERE p.delivery_id = d.id)
			FROM deliveries d INDEXED BY deliveries_recipient JOIN messages m ON m.id = d.message_id
			WHERE d.recipient = ? AND d.connector = ? AND m.created_at >= ?`
	qModemSent = `SELECT p.modem, SUM(p.n), COUNT(*), SUM(p.failed), SUM(d.state IN ('sent', 'delivered')), SUM(d.state IN ('failed', 'expired'))
		FROM (SELECT modem, delivery_id, COUNT(*) AS n, SUM(state = 'failed') AS failed FROM sent_parts INDEXED BY sent_parts_sent
			WHERE sent_at >= ? AND (? = '' OR modem = ?) GROUP BY modem, delivery_id) p
		JOIN deliveries d ON d.id = p.delivery_id GROUP BY p.modem`
	qModemReceived = `SELECT modem, COUNT(*), SUM(parts) FROM messages INDEXED BY messages_created
		WHERE direction = 'in' AND created_at >= ? AND (? = '' OR modem = ?) GROUP BY modem`
	qChannelIn = `SELECT channel, COUNT(*) FROM messages INDEXED BY messages_created
		WHERE created_at >= ? GROUP BY channel`
	qChannelOut = `SELECT d.connector, COUNT(*),
			SUM(d.state IN ('sent', 'delivered')), SUM(d.state IN ('failed', 'expired')), SUM(d.state IN ('queued', 'scheduled', 'sending'))
		FROM messages m INDEXED BY messages_created JOIN deliveries d ON d.message_id = m.id
		WHERE m.created_at >= ? GROUP BY d.connector`
)

// statsQueries are the queries of the statistics, by name.
var statsQueries = map[string]string{
	"qSenderIn":      qSenderIn,
	"qSenderLast":    qSenderLast,
	"qSenderOut":     qSenderOut,
	"qModemSent":     qModemSent,
	"qModemReceived": qModemReceived,
	"qChannelIn":     qChannelIn,
	"qChannelOut":    qChannelOut,
}

// Channels are the channels ChannelStats lists even with no traffic.
var Channels = []string{"sms", "email", "mqtt", "hub", "webhook", "http", "cli"}

func rate(ok, failed int) *float64 {
	if ok+failed == 0 {
		return nil
	}
	r := float64(ok) / float64(ok+failed)
	return &r
}

// outcome classifies a delivery state: succeeded, failed or pending
// (cancelled is its own).
func outcome(state string) string {
	switch state {
	case Sent, Delivered:
		return "ok"
	case Failed, Expired:
		return "failed"
	case Cancelled:
		return Cancelled
	}
	return "pending"
}

// SenderStats is the traffic of the address from (as messages record
// their sender: "tel:+15555550100", "mailto:…", "mqtt:<client id>") and
// of the deliveries to recipient through connector (the SMS connector
// and "+15555550100"; connector "" counts none) since since. Days are
// cut in loc.
func (tx *Tx) SenderStats(from, connector, recipient string, since time.Time, loc *time.Location) (SenderStats, error) {
	var st SenderStats
	days := map[string]*Day{}
	day := func(at int64) *Day {
		k := fromMS(at).In(loc).Format(time.DateOnly)
		d := days[k]
		if d == nil {
			d = &Day{Day: k}
			days[k] = d
		}
		return d
	}
	if from != "" {
		rows, err := tx.tx.QueryContext(tx.ctx, qSenderIn, from, ms(since))
		if err != nil {
			return st, err
		}
		for rows.Next() {
			var at int64
			if err := rows.Scan(&at); err != nil {
				rows.Close()
				return st, err
			}
			st.In++
			day(at).In++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return st, err
		}
		var last sql.NullInt64
		if err := tx.tx.QueryRowContext(tx.ctx, qSenderLast, from).Scan(&last); err != nil {
			return st, err
		}
		if last.Valid {
			st.LastSeen = fromMS(last.Int64)
		}
	}
	if connector != "" {
		rows, err := tx.tx.QueryContext(tx.ctx, qSenderOut, recipient, connector, ms(since))
		if err != nil {
			return st, err
		}
		var toSent, toDelivered int64
		for rows.Next() {
			var state string
			var created, notBefore, updated int64
			var sentAt sql.NullInt64
			if err := rows.Scan(&state, &created, &notBefore, &updated, &sentAt); err != nil {
				rows.Close()
				return st, err
			}
			st.Out++
			day(created).Out++
			switch outcome(state) {
			case "ok":
				st.Succeeded++
			case "failed":
				st.Failed++
			case Cancelled:
				st.Cancelled++
			default:
				st.Pending++
			}
			start := max(created, notBefore)
			if state == Sent || state == Delivered {
				sent := updated
				if sentAt.Valid {
					sent = sentAt.Int64
				}
				toSent += max(sent-start, 0)
				st.SentTimed++
			}
			if state == Delivered {
				toDelivered += max(updated-start, 0)
				st.DeliveredTimed++
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return st, err
		}
		if st.SentTimed > 0 {
			v := toSent / int64(st.SentTimed)
			st.ToSentMS = &v
		}
		if st.DeliveredTimed > 0 {
			v := toDelivered / int64(st.DeliveredTimed)
			st.ToDeliveredMS = &v
		}
	}
	st.SuccessRate = rate(st.Succeeded, st.Failed)
	st.Days = make([]Day, 0, len(days))
	for _, d := range days {
		st.Days = append(st.Days, *d)
	}
	sort.Slice(st.Days, func(i, j int) bool { return st.Days[i].Day < st.Days[j].Day })
	return st, nil
}

// ModemStats is what each modem (or only modem, when not "") sent (parts
// handed to it since since) and received (messages stored since since),
// by modem id.
func (tx *Tx) ModemStats(since time.Time, modem string) ([]ModemStats, error) {
	by := map[string]*ModemStats{}
	get := func(id string) *ModemStats {
		m := by[id]
		if m == nil {
			m = &ModemStats{Modem: id}
			by[id] = m
		}
		return m
	}
	if modem != "" {
		get(modem)
	}
	rows, err := tx.tx.QueryContext(tx.ctx, qModemSent, ms(since), modem, modem)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var id string
		var parts, msgs, pfailed, ok, failed int
		if err := rows.Scan(&id, &parts, &msgs, &pfailed, &ok, &failed); err != nil {
			rows.Close()
			return nil, err
		}
		m := get(id)
		m.PartsSent, m.MessagesSent, m.PartsFailed, m.Succeeded, m.Failed = parts, msgs, pfailed, ok, failed
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = tx.tx.QueryContext(tx.ctx, qModemReceived, ms(since), modem, modem)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var id string
		var msgs, parts int
		if err := rows.Scan(&id, &msgs, &parts); err != nil {
			rows.Close()
			return nil, err
		}
		if id == "" {
			continue // not received by a modem (a copy from the hub)
		}
		m := get(id)
		m.MessagesReceived, m.PartsReceived = msgs, parts
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([]ModemStats, 0, len(by))
	for _, m := range by {
		m.SuccessRate = rate(m.Succeeded, m.Failed)
		out = append(out, *m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Modem < out[j].Modem })
	return out, nil
}

// ChannelStats is the traffic of every channel since since: those of
// Channels always, and any other that had some (route, keyword…).
func (tx *Tx) ChannelStats(since time.Time) ([]ChannelStats, error) {
	by := map[string]*ChannelStats{}
	get := func(ch string) *ChannelStats {
		c := by[ch]
		if c == nil {
			c = &ChannelStats{Channel: ch}
			by[ch] = c
		}
		return c
	}
	for _, ch := range Channels {
		get(ch)
	}
	rows, err := tx.tx.QueryContext(tx.ctx, qChannelIn, ms(since))
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var ch string
		var n int
		if err := rows.Scan(&ch, &n); err != nil {
			rows.Close()
			return nil, err
		}
		if ch == "" {
			ch = "unknown"
		}
		get(ch).In += n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = tx.tx.QueryContext(tx.ctx, qChannelOut, ms(since))
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var ch string
		var n, ok, failed, pending int
		if err := rows.Scan(&ch, &n, &ok, &failed, &pending); err != nil {
			rows.Close()
			return nil, err
		}
		c := get(ch)
		c.Out, c.Succeeded, c.Failed, c.Pending = n, ok, failed, pending
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([]ChannelStats, 0, len(by))
	for _, ch := range Channels {
		out = append(out, *by[ch])
		delete(by, ch)
	}
	var rest []string
	for ch := range by {
		rest = append(rest, ch)
	}
	sort.Strings(rest)
	for _, ch := range rest {
		out = append(out, *by[ch])
	}
	for i := range out {
		out[i].SuccessRate = rate(out[i].Succeeded, out[i].Failed)
	}
	return out, nil
}

// ModemSeen reports whether the modem id sent a part or received a
// message (a modem no longer configured has its history).
func (tx *Tx) ModemSeen(id string) (bool, error) {
	var n int
	err := tx.tx.QueryRowContext(tx.ctx, `SELECT EXISTS (SELECT 1 FROM sent_parts INDEXED BY sent_parts_mr WHERE modem = ?)`, id).Scan(&n)
	return n == 1, err
}
