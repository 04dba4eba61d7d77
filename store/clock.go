package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/outpost-sms/outpost/store/clock"
)

// Clock is where a store reads the time: the wall clock (it may jump) and
// the monotonic time elapsed in this process (it does not).
type Clock interface {
	Now() time.Time
	Elapsed() time.Duration
}

type systemClock struct{}

func (systemClock) Now() time.Time         { return time.Now() }
func (systemClock) Elapsed() time.Duration { return clock.Elapsed() }

type clockBox struct{ c Clock }

// SetClock makes the store read the time from c (tests; see
// Options.Clock). It is safe to call at any time.
func (s *Store) SetClock(c Clock) { s.clk.Store(&clockBox{c}) }

// Now is the store's wall clock: the time transactions record.
func (s *Store) Now() time.Time { return s.clk.Load().c.Now() }

// Elapsed is the store's monotonic time (see package clock).
func (s *Store) Elapsed() time.Duration { return s.clk.Load().c.Elapsed() }

// timeCols are every stored time (unix ms, 0: none). See package clock
// for the rules they follow across jumps of the clock.
var timeCols = []struct{ table, col string }{
	{"messages", "created_at"}, {"messages", "not_before"}, {"messages", "expires_at"},
	{"deliveries", "next_at"}, {"deliveries", "expires_at"}, {"deliveries", "updated_at"},
	{"events", "at"},
	{"inbound_parts", "received_at"},
	{"sent_parts", "sent_at"},
	{"hub_queue", "created_at"},
	{"orphan_reports", "received_at"},
	{"email_conversations", "updated_at"}, {"email_conversations", "expires_at"},
	{"xmpp_conversations", "updated_at"}, {"xmpp_conversations", "expires_at"}, {"xmpp_last_shown", "at"},
	{"optouts", "at"}, {"subscriptions", "at"}, {"people_log", "at"},
	{"quota_counts", "at"},
	{"modem_samples", "at"},
	{"modem_balance", "at"},
	{"api_tokens", "created_at"}, {"api_tokens", "expires_at"}, {"api_tokens", "last_used"},
	{"users", "created_at"}, {"sessions", "created_at"}, {"sessions", "last_used"},
	{"paused", "since"},
}

// recordedCols are the times that say when something happened (not when
// something is due): at start, the newest insane one is taken as "now".
var recordedCols = []struct{ table, col string }{
	{"messages", "created_at"}, {"deliveries", "updated_at"}, {"events", "at"},
	{"inbound_parts", "received_at"}, {"sent_parts", "sent_at"}, {"hub_queue", "created_at"},
	{"orphan_reports", "received_at"},
	{"email_conversations", "updated_at"}, {"xmpp_conversations", "updated_at"}, {"xmpp_last_shown", "at"},
	{"optouts", "at"}, {"subscriptions", "at"}, {"people_log", "at"},
	{"quota_counts", "at"},
	{"modem_samples", "at"},
	{"modem_balance", "at"},
	{"api_tokens", "created_at"}, {"api_tokens", "last_used"},
	{"users", "created_at"}, {"sessions", "created_at"}, {"sessions", "last_used"},
	{"paused", "since"},
}

// floorMS is clock.Floor in unix ms.
func floorMS() int64 { return clock.Floor.UnixMilli() }

// shiftInsane moves every stored time recorded while the clock was not
// sane (before the floor) by by, onto the clock's new timeline. It
// returns how many values moved. A time is never moved to 0 (none).
func shiftInsane(ctx context.Context, tx *sql.Tx, by time.Duration) (int64, error) {
	var n int64
	for _, c := range timeCols {
		res, err := tx.ExecContext(ctx, fmt.Sprintf(`UPDATE %s SET %s = MAX(%s + ?, 1) WHERE %s != 0 AND %s < ?`, c.table, c.col, c.col, c.col, c.col),
			by.Milliseconds(), floorMS())
		if err != nil {
			return n, fmt.Errorf("rebase %s.%s: %w", c.table, c.col, err)
		}
		k, _ := res.RowsAffected()
		n += k
	}
	return n, nil
}

// shiftBack moves what waits or ages and was recorded after now (so
// before the clock went back by -by) back by the same step: a retry then
// waits its backoff, a part or a hub message ages, in elapsed time.
func shiftBack(ctx context.Context, tx *sql.Tx, now time.Time, by time.Duration) (int64, error) {
	var n int64
	for _, q := range []string{
		`UPDATE deliveries SET next_at = CASE WHEN next_at = 0 THEN 0 ELSE MAX(next_at + ?1, 1) END, updated_at = updated_at + ?1
			WHERE state = 'queued' AND updated_at > ?2`,
		`UPDATE hub_queue SET created_at = created_at + ?1 WHERE created_at > ?2`,
		`UPDATE inbound_parts SET received_at = received_at + ?1 WHERE message_id IS NULL AND received_at > ?2`,
		`UPDATE quota_counts SET at = at + ?1 WHERE at > ?2`,
	} {
		res, err := tx.ExecContext(ctx, q, by.Milliseconds(), ms(now))
		if err != nil {
			return n, fmt.Errorf("clock went back: %w", err)
		}
		k, _ := res.RowsAffected()
		n += k
	}
	return n, nil
}

// Jumped is a step of the clock the store made up for.
type Jumped struct {
	clock.Jump
	// Rows is how many stored times were moved.
	Rows int64
}

// pending is a jump seen and not yet made up for (committer only).
type pending struct {
	from, to time.Time
}

// observe reads the clock and notes a jump (on the committer).
func (s *Store) observe() time.Time {
	now := s.Now()
	if j, ok := s.watch.Observe(now, s.Elapsed()); ok {
		if s.jump == nil {
			s.jump = &pending{from: j.From, to: j.To}
		} else {
			// Two steps before one was made up for: one step from where
			// the first started to where the last ended.
			s.jump.to = s.jump.to.Add(j.By())
		}
	}
	return now
}

// adjust makes up for a pending jump inside tx (on the committer): a jump
// while the clock was not sane moves every insane time by the jump (when
// it became sane: the rebase); a sane clock going back moves what was
// recorded after now back by the step. A sane clock going forward moves
// nothing (what was recorded before looks older by the step).
func (s *Store) adjust(ctx context.Context, tx *sql.Tx, now time.Time) (*Jumped, error) {
	if s.jump == nil {
		return nil, nil
	}
	j := clock.Jump{From: s.jump.from, To: s.jump.to}
	by := j.By()
	var n int64
	var err error
	switch {
	case !clock.Sane(j.From):
		n, err = shiftInsane(ctx, tx, by)
	case clock.Sane(j.To) && by < 0:
		n, err = shiftBack(ctx, tx, now, by)
	}
	if err != nil {
		return nil, err
	}
	return &Jumped{Jump: j, Rows: n}, nil
}

// rebaseAtOpen makes up for what the clock did while the daemon was not
// running, whose elapsed time is lost: the insane times an earlier run
// left are moved so that the newest of them is now (time the box was off,
// or whose length is unknown, never counts as age); and when what waits
// (queued retries, the hub queue, open parts) was recorded after now, the
// clock is behind the earlier run's and those are moved back so that the
// newest is now (a retry waits its backoff, not the backoff plus the
// step; this also brings a sane earlier run onto a clock that boots in
// 1970 and never gets set).
func (s *Store) rebaseAtOpen(ctx context.Context) error {
	now := s.Now()
	s.watch.Observe(now, s.Elapsed())
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	newest := func(qs ...string) (int64, bool, error) {
		var out sql.NullInt64
		for _, q := range qs {
			var v sql.NullInt64
			if err := tx.QueryRowContext(ctx, q, floorMS()).Scan(&v); err != nil {
				return 0, false, err
			}
			if v.Valid && (!out.Valid || v.Int64 > out.Int64) {
				out = v
			}
		}
		return out.Int64, out.Valid, nil
	}
	// What the last run recorded last is each table's last row: looking
	// at those costs nothing, and the whole tables are read only when one
	// of them says the clock was not sane, or is behind. (A run that
	// ends with a sane clock leaves no insane time: the jump that made it
	// sane moved them all. So when insane times are left, the last run
	// ended with an insane clock, and what it wrote last is insane; every
	// change of a delivery appends an event.)
	var last []string
	for _, c := range recordedCols {
		last = append(last, fmt.Sprintf(`SELECT MAX(%s) FROM (SELECT %s FROM %s WHERE ?1 = ?1 ORDER BY rowid DESC LIMIT 1)`, c.col, c.col, c.table))
	}
	var lastInsane, lastMax int64
	for _, q := range last {
		v, ok, err := newest(q)
		if err != nil {
			return fmt.Errorf("the last times recorded: %w", err)
		}
		if ok && v != 0 && v < floorMS() {
			lastInsane = v
		}
		lastMax = max(lastMax, v)
	}
	var jumps []Jumped
	var qs []string
	for _, c := range recordedCols {
		qs = append(qs, fmt.Sprintf(`SELECT MAX(%s) FROM %s WHERE %s != 0 AND %s < ?1`, c.col, c.table, c.col, c.col))
	}
	insane, ok := int64(0), false
	if lastInsane != 0 {
		if insane, ok, err = newest(qs...); err != nil {
			return fmt.Errorf("times recorded before the clock was set: %w", err)
		}
	}
	if ok && insane != ms(now) {
		n, err := shiftInsane(ctx, tx, time.Duration(ms(now)-insane)*time.Millisecond)
		if err != nil {
			return err
		}
		jumps = append(jumps, Jumped{Jump: clock.Jump{From: fromMS(insane), To: now}, Rows: n})
	}
	waiting, ok := int64(0), false
	if lastInsane != 0 || lastMax > ms(now.Add(clock.Tolerance)) {
		waiting, ok, err = newest(`SELECT MAX(updated_at) FROM deliveries WHERE state = 'queued' AND ?1 = ?1`,
			`SELECT MAX(created_at) FROM (SELECT created_at FROM hub_queue WHERE ?1 = ?1 ORDER BY id DESC LIMIT 1)`,
			`SELECT MAX(received_at) FROM inbound_parts WHERE message_id IS NULL AND ?1 = ?1`)
		if err != nil {
			return fmt.Errorf("times recorded before the clock went back: %w", err)
		}
	}
	if ok && waiting > ms(now.Add(clock.Tolerance)) {
		n, err := shiftBack(ctx, tx, now, time.Duration(ms(now)-waiting)*time.Millisecond)
		if err != nil {
			return err
		}
		jumps = append(jumps, Jumped{Jump: clock.Jump{From: fromMS(waiting), To: now}, Rows: n})
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	for _, j := range jumps {
		s.noteJump(j)
	}
	return nil
}

// OnJump registers f to be called, on the committer, once the stored
// times have been moved to follow a jump of the clock: what waits for a
// time (a dispatcher, the expiry loop) must look again. f must not block.
func (s *Store) OnJump(f func()) {
	s.jumpMu.Lock()
	defer s.jumpMu.Unlock()
	s.onJump = append(s.onJump, f)
}

func (s *Store) noteJump(j Jumped) {
	defer func() {
		s.jumpMu.Lock()
		fs := append([]func(){}, s.onJump...)
		s.jumpMu.Unlock()
		for _, f := range fs {
			f()
		}
	}()
	s.log.Warn("the clock jumped; stored times moved to follow it (see package clock)",
		"from", j.From.Format(time.RFC3339Nano), "to", j.To.Format(time.RFC3339Nano), "by", j.By().String(), "moved", j.Rows)
	s.jumpMu.Lock()
	defer s.jumpMu.Unlock()
	if len(s.jumps) >= 16 {
		s.jumps = s.jumps[1:]
	}
	s.jumps = append(s.jumps, j)
}

// Jumps returns (and forgets) the last steps of the clock the store
// noted (16 at most), for tests and status.
func (s *Store) Jumps() []Jumped {
	s.jumpMu.Lock()
	defer s.jumpMu.Unlock()
	j := s.jumps
	s.jumps = nil
	return j
}
