package bridge

import (
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/outpost-sms/outpost/store"
)

// Quota is the sending policy of the config's [quota]: how many SMS each
// source may have accepted per hour and per day, how many one number
// gets per hour, and the quiet hours. The zero Quota bounds nothing.
//
// Nothing is counted (no row written) for a bound that is not set: the
// SD card pays for every write.
//
// Counts are SMS accepted: a send to N numbers counts N (after opt-outs,
// bans and numbers over their own bound are left out); a long SMS counts
// 1 per number whatever its parts; deliveries to other addresses (mail,
// webhooks, mqtt) do not count. They are stored with the send, in its
// transaction (store.AddQuota), and checked there, so concurrent sends
// cannot pass a bound and a restart does not reset one. The windows are
// sliding (the last hour, the last 24 hours) and follow the store's
// clock rules (package clock): a jump of the clock neither resets nor
// stretches them.
type Quota struct {
	// SMSPerHour and SMSPerDay bound every source (0: no bound).
	SMSPerHour, SMSPerDay int
	// Sources override them for the sources whose who matches a glob,
	// the first that matches.
	Sources []SourceQuota
	// PerNumberPerHour bounds the SMS one number gets in any hour (0: no
	// bound).
	PerNumberPerHour int
	// Quiet holds sends below its priority during its hours (nil: none).
	Quiet *QuietHours
}

// SourceQuota is one [[quota.source]]: the bounds of the sources whose
// who (sendWho: "mqtt:<client id>", "mailto:…", the HTTP caller, "user
// NAME") matches Who, a glob.
type SourceQuota struct {
	Who                   string
	SMSPerHour, SMSPerDay int
}

// QuietHours are the hours of the day (Start to End, minutes after
// midnight in Loc; End before Start spans midnight) when sends below
// Priority wait for their end.
type QuietHours struct {
	Start, End int
	Loc        *time.Location
	Priority   int
}

// ErrQuota marks a send refused because it would pass a quota; it is
// also ErrInvalid. QuotaWait says when there is room again.
var ErrQuota = errors.New("over quota")

type quotaError struct {
	msg  string
	wait time.Duration // 0: no room for it ever (more than the bound)
}

func (e quotaError) Error() string { return ErrInvalid.Error() + ": " + e.msg }
func (e quotaError) Is(target error) bool {
	return target == ErrInvalid || target == ErrQuota
}

// QuotaWait is how long after err (ErrQuota) the send would fit (0:
// never as it is: it asks for more than the bound).
func QuotaWait(err error) time.Duration {
	var q quotaError
	if errors.As(err, &q) {
		return q.wait
	}
	return 0
}

// RetryAfter is QuotaWait in whole seconds, rounded up (0: none), as
// HTTP's Retry-After and the replies' "retry_after" say it.
func RetryAfter(err error) int {
	w := QuotaWait(err)
	return int((w + time.Second - 1) / time.Second)
}

// automatic says the router makes the send itself (a confirmation of
// STOP, START, JOIN or LEAVE, a route's auto-reply, an alert): no source quota
// applies, and no number's bound or quiet hours hold it back.
func (req SendRequest) automatic() bool {
	return req.Source == ReplyChannel || req.Source == PeopleChannel || req.Source == AlertChannel
}

// limits are the bounds of who, and what the message names them by.
func (q Quota) limits(who string) (perHour, perDay int, from string) {
	for i, s := range q.Sources {
		pattern := s.Who
		if len(pattern) >= 7 && strings.EqualFold(pattern[:7], "mailto:") {
			// Mail senders are known in lower case (as mailto:
			// addresses are compared): a glob with capitals matches.
			pattern = strings.ToLower(pattern)
		}
		if ok, _ := path.Match(pattern, who); ok {
			return s.SMSPerHour, s.SMSPerDay, fmt.Sprintf("[[quota.source]] %d who = %q", i+1, s.Who)
		}
	}
	return q.SMSPerHour, q.SMSPerDay, "[quota]"
}

// prunePerSend bounds the old counts deleted with each send (plus one
// per number it counts).
const prunePerSend = 200

// answers reports whether req answers addr's own inbound message, and
// how long ago that came in.
func answers(tx *store.Tx, req SendRequest, addr Address) (bool, time.Duration, error) {
	if req.InReplyTo == "" {
		return false, 0, nil
	}
	in, err := tx.Message(req.InReplyTo)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return false, 0, nil
	case err != nil:
		return false, 0, err
	}
	if in.Direction != store.In || in.FromAddr != addr.String() {
		return false, 0, nil
	}
	return true, max(tx.Now().Sub(in.CreatedAt), 0), nil
}

// applyQuota is the quota check of every send, inside the transaction
// that stores it (after opt-outs and bans): a number over
// PerNumberPerHour named directly refuses the request, one a group or a
// topic brought is skipped (notes name it); then the SMS left count
// against the source's bounds, and a send that would pass one is
// refused with when there is room again. What is accepted is counted.
// Automatic sends and answers to a number's own message count for the
// number but are never held back by its bound: the person asked.
func (h *Router) applyQuota(tx *store.Tx, req SendRequest, direct map[Address]bool, targets []target, id string) (kept []target, notes []string, err error) {
	q := h.Quota
	now := tx.Now()
	// Every number's hour, in few statements (a group may have 10,000).
	var counts map[string]int
	if q.PerNumberPerHour > 0 && !req.automatic() {
		var tel []string
		for _, t := range targets {
			if t.addr.Scheme == SchemeTel {
				tel = append(tel, t.addr.String())
			}
		}
		if counts, err = tx.QuotaCounts(store.QuotaNumber, tel, now.Add(-time.Hour)); err != nil {
			return nil, nil, err
		}
	}
	var numbers []string
	for _, t := range targets {
		if t.addr.Scheme != SchemeTel {
			kept = append(kept, t)
			continue
		}
		if counts != nil && counts[t.addr.String()]+1 > q.PerNumberPerHour {
			uses, err := tx.QuotaUses(store.QuotaNumber, t.addr.String(), now.Add(-time.Hour))
			if err != nil {
				return nil, nil, err
			}
			if wait, over := room(uses, 1, q.PerNumberPerHour, time.Hour, now); over {
				mine, _, err := answers(tx, req, t.addr)
				if err != nil {
					return nil, nil, err
				}
				if !mine {
					why := fmt.Sprintf("%s already got %d SMS in the last hour (quota.per_number_per_hour = %d)", t.addr.Value, sum(uses), q.PerNumberPerHour)
					if direct[t.addr] {
						return nil, nil, quotaError{fmt.Sprintf("quota: %s: nothing more is sent to it until %s", why, freeAt(now, wait)), wait}
					}
					notes = append(notes, fmt.Sprintf("%s skipped: %s", t.addr.Value, why))
					continue
				}
			}
		}
		kept = append(kept, t)
		numbers = append(numbers, t.addr.String())
	}
	if len(kept) == 0 {
		return nil, nil, quotaError{"quota: every recipient is over quota.per_number_per_hour, nothing to send: " + strings.Join(notes, "; "), 0}
	}
	bySource := q.SMSPerHour > 0 || q.SMSPerDay > 0 || len(q.Sources) > 0
	if len(numbers) > 0 && !req.automatic() && bySource {
		who := sendWho(req)
		perHour, perDay, from := q.limits(who)
		for _, w := range []struct {
			limit  int
			window time.Duration
			name   string
		}{{perHour, time.Hour, "sms_per_hour"}, {perDay, 24 * time.Hour, "sms_per_day"}} {
			if w.limit <= 0 {
				continue
			}
			uses, err := h.usesOver(tx, store.QuotaSource, who, now.Add(-w.window), len(numbers), w.limit)
			if err != nil {
				return nil, nil, err
			}
			wait, over := room(uses, len(numbers), w.limit, w.window, now)
			if !over {
				continue
			}
			last := "hour"
			if w.window > time.Hour {
				last = "24 hours"
			}
			msg := fmt.Sprintf("quota: %s had %d SMS accepted in the last %s and may have %d (%s %s = %d): this send of %d SMS",
				who, sum(uses), last, w.limit, from, w.name, w.limit, len(numbers))
			if wait == 0 {
				return nil, nil, quotaError{msg + " is more than that at once: split it", 0}
			}
			return nil, nil, quotaError{msg + " would pass it; there is room for it again at " + freeAt(now, wait), wait}
		}
		if err := tx.AddQuota(store.QuotaSource, who, id, len(numbers)); err != nil {
			return nil, nil, err
		}
	}
	if q.PerNumberPerHour > 0 {
		if err := tx.AddQuotas(store.QuotaNumber, numbers, id); err != nil {
			return nil, nil, err
		}
	}
	if len(numbers) > 0 && (bySource || q.PerNumberPerHour > 0) {
		if _, err := tx.PruneQuota(now.Add(-25*time.Hour), prunePerSend+len(numbers)); err != nil {
			return nil, nil, err
		}
	}
	return kept, notes, nil
}

// usesOver reads the uses of key since then when n more would pass
// limit (to say by how much, and when they fit), and only their sum
// otherwise: the sum is one look at the index, the list a row each.
func (h *Router) usesOver(tx *store.Tx, kind, key string, since time.Time, n, limit int) ([]store.QuotaUse, error) {
	used, err := tx.QuotaCount(kind, key, since)
	if err != nil || used+n <= limit {
		return []store.QuotaUse{{N: used}}, err
	}
	return tx.QuotaUses(kind, key, since)
}

func sum(uses []store.QuotaUse) int {
	n := 0
	for _, u := range uses {
		n += u.N
	}
	return n
}

// room says whether n more would pass limit over the window, given the
// uses in it (oldest first), and if so how long until they fit (0: never,
// n alone is more than limit).
func room(uses []store.QuotaUse, n, limit int, window time.Duration, now time.Time) (wait time.Duration, over bool) {
	used := sum(uses)
	if used+n <= limit {
		return 0, false
	}
	if n > limit {
		return 0, true
	}
	for _, u := range uses {
		used -= u.N
		if used+n <= limit {
			// It leaves the window a window after it was counted; at
			// least a second, for a Retry-After that means something.
			return max(u.At.Add(window).Sub(now), time.Second), true
		}
	}
	return window, true // not reached: the uses sum to used
}

// freeAt says when a wait from now ends: the time (UTC) and the wait.
func freeAt(now time.Time, wait time.Duration) string {
	return fmt.Sprintf("%s (in %s)", now.Add(wait).UTC().Format(time.RFC3339), wait.Round(time.Second))
}

// until reports whether t falls in the quiet hours, and when they end.
func (q *QuietHours) until(t time.Time) (time.Time, bool) {
	if q == nil {
		return time.Time{}, false
	}
	loc := q.Loc
	if loc == nil {
		loc = time.Local
	}
	l := t.In(loc)
	m := l.Hour()*60 + l.Minute()
	day := func(add int) time.Time {
		return time.Date(l.Year(), l.Month(), l.Day()+add, q.End/60, q.End%60, 0, 0, loc)
	}
	switch {
	case q.Start < q.End && m >= q.Start && m < q.End:
		return day(0), true
	case q.Start > q.End && m >= q.Start:
		return day(1), true
	case q.Start > q.End && m < q.End:
		return day(0), true
	}
	return time.Time{}, false
}

// QuietReplyWindow is how recent a person's own message must be for an
// answer to it to go during the quiet hours: who texts at 22:00 wants
// the answer then; an answer to this afternoon's message can wait.
const QuietReplyWindow = time.Hour

// quietHold says until when a delivery of req to t waits for the end of
// the quiet hours (zero: it does not), and the history's words. due is
// when it would go otherwise (now, or its not_before).
func (h *Router) quietHold(tx *store.Tx, req SendRequest, t target, due time.Time) (time.Time, string, error) {
	q := h.Quota.Quiet
	if q == nil || t.addr.Scheme != SchemeTel || req.Priority >= q.Priority || req.automatic() {
		return time.Time{}, "", nil
	}
	end, quiet := q.until(due)
	if !quiet {
		return time.Time{}, "", nil
	}
	mine, ago, err := answers(tx, req, t.addr)
	if err != nil || mine && ago < QuietReplyWindow {
		return time.Time{}, "", err
	}
	loc := q.Loc
	if loc == nil {
		loc = time.Local
	}
	return end, fmt.Sprintf("quiet hours until %s (%s, %s; priority %s is below quota.quiet_priority %s)",
		end.In(loc).Format("15:04"), end.In(loc).Format("2006-01-02"), loc, PriorityName(req.Priority), PriorityName(q.Priority)), nil
}

// QuietUntil reports whether t falls in q's quiet hours, and when they
// end (for tests and status).
func QuietUntil(q *QuietHours, t time.Time) (time.Time, bool) { return q.until(t) }

// began is when the quiet period t falls in started (t in it).
func (q *QuietHours) began(t time.Time) time.Time {
	loc := q.Loc
	if loc == nil {
		loc = time.Local
	}
	l := t.In(loc)
	start := time.Date(l.Year(), l.Month(), l.Day(), q.Start/60, q.Start%60, 0, 0, loc)
	if start.After(l) {
		start = start.AddDate(0, 0, -1)
	}
	return start
}

// holdQuiet runs in the transaction that claims the SMS connector's due
// deliveries: during the quiet hours, those below the quiet priority
// whose message was accepted before they began (an outage's backlog, a
// retry; what is accepted during them was looked at then) are held
// until their end, state scheduled. The router's own sends
// (confirmations, auto-replies) are not held.
func (h *Router) holdQuiet(tx *store.Tx, c Connector) error {
	q := h.Quota.Quiet
	if q == nil {
		return nil
	}
	if tel := h.ConnectorFor(SchemeTel); tel == nil || tel.Name() != c.Name() {
		return nil
	}
	now := tx.Now()
	end, quiet := q.until(now)
	if !quiet {
		return nil
	}
	ds, err := tx.DueBefore(c.Name(), q.Priority, q.began(now), []string{ReplyChannel, PeopleChannel, AlertChannel}, 100)
	if err != nil {
		return err
	}
	loc := q.Loc
	if loc == nil {
		loc = time.Local
	}
	for _, d := range ds {
		detail := fmt.Sprintf("quiet hours until %s (%s, %s; priority %s is below quota.quiet_priority %s): held, it was waiting when they began",
			end.In(loc).Format("15:04"), end.In(loc).Format("2006-01-02"), loc, PriorityName(d.Priority), PriorityName(q.Priority))
		if _, err := h.Transition(tx, d.ID, store.Transition{State: store.Scheduled, NextAt: end, LastError: d.LastError, Detail: detail}); err != nil {
			return err
		}
	}
	return nil
}
