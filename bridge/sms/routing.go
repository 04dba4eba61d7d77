package sms

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/outpost-sms/outpost/bridge"
	"github.com/outpost-sms/outpost/hw"
	"github.com/outpost-sms/outpost/store"
	"github.com/outpost-sms/outpost/store/clock"
)

// ModemOptions are how one modem takes part in sending ([[modem]]
// prefixes, send, rate, daily_limit, jitter).
type ModemOptions struct {
	// Prefixes are the numbers the modem is preferred for (the longest
	// matching prefix wins).
	Prefixes []string
	// ReceiveOnly modems are never given a part.
	ReceiveOnly bool
	// Rate parts at most in any Per of elapsed time (0: no bound).
	Rate int
	Per  time.Duration
	// DailyLimit bounds the parts of one day by the box's clock (0: none).
	DailyLimit int
	// Jitter is the most of a random wait before each part.
	Jitter time.Duration
}

// Clock is the time the carrier limits count in: the box's by default.
// A simulated network may run faster than real time (tests rehearse an
// hour of rate limits in seconds), and then the limits must follow it.
type Clock interface {
	// Now is the wall time: its local date is daily_limit's day.
	Now() time.Time
	// Elapsed is monotonic time: the rate windows and rests.
	Elapsed() time.Duration
	// Real is how long d of this clock takes in real time.
	Real(d time.Duration) time.Duration
}

type systemClock struct{}

func (systemClock) Now() time.Time                     { return time.Now() }
func (systemClock) Elapsed() time.Duration             { return clock.Elapsed() }
func (systemClock) Real(d time.Duration) time.Duration { return d }

// Rests of a modem that keeps failing: after restAfter failures in a row
// it is given nothing for restMin, doubling up to restMax while it fails
// again after each rest.
const (
	restAfter = 3
	restMin   = time.Minute
	restMax   = 30 * time.Minute
)

// lane is what the connector knows of one modem's sending.
type lane struct {
	opts     ModemOptions
	sent     []time.Duration // elapsed times of the recent parts, oldest first
	inflight int
	day      string // the local date today counts
	dayAt    time.Duration
	today    int
	downAt   time.Duration // seen not ready, or paused, since (elapsed; 0: ready)
	fails    int           // in a row
	rest     time.Duration
	until    time.Duration // rested until (elapsed)
	rests    int
	lastErr  string
}

// RouteState is a modem's part in sending, for status.
type RouteState struct {
	Send       bool     `json:"send"`
	Prefixes   []string `json:"prefixes,omitempty"`
	Rate       string   `json:"rate,omitempty"`
	DailyLimit int      `json:"daily_limit,omitempty"`
	InFlight   int      `json:"in_flight"`
	LastMinute int      `json:"sent_last_minute"`
	Today      int      `json:"sent_today"`
	Failures   int      `json:"failures_in_a_row,omitempty"`
	Rests      int      `json:"rests,omitempty"`
	// RestedFor is how much longer the modem is given nothing, after
	// failing too often ("" when it is not rested).
	RestedFor string `json:"rested_for,omitempty"`
	LastError string `json:"last_error,omitempty"`
	// Waiting says why the modem cannot take a part now (a limit).
	Waiting string `json:"waiting,omitempty"`
}

// sendState is the choice of a modem for each part.
type sendState struct {
	once  sync.Once
	mu    sync.Mutex
	lanes map[string]*lane
	clock Clock
}

func (c *Connector) lanesInit() {
	c.rt.once.Do(func() {
		if c.Clock == nil {
			c.Clock = systemClock{}
		}
		c.rt.clock = c.Clock
		c.rt.lanes = map[string]*lane{}
		for _, id := range c.order {
			c.rt.lanes[id] = &lane{opts: c.Modems[id], rest: restMin}
		}
		c.router.OnRoutingStatus(c.RoutingStatus)
	})
}

// seedToday counts what each modem sent since local midnight and, with
// the box's clock, when it sent its parts of the last hour (by the
// store's clock), so that daily_limit and rate hold across restarts: a
// daemon restarting in a loop does not send a rate's worth each time.
func (c *Connector) seedToday(ctx context.Context) {
	day := c.rt.clock.Now().Local().Format(time.DateOnly)
	_, box := c.rt.clock.(systemClock)
	var counts map[string]int
	var recent map[string][]time.Time
	var now time.Time
	err := c.Store.View(ctx, func(tx *store.Tx) (err error) {
		now = tx.Now()
		y, m, d := now.Local().Date()
		if counts, err = tx.PartsSentSince(time.Date(y, m, d, 0, 0, 0, 0, time.Local)); err != nil || !box {
			return err
		}
		recent, err = tx.PartTimesSince(now.Add(-time.Hour))
		return err
	})
	if err != nil {
		c.Log.Warn("cannot count the parts each modem sent; its limits count from now", "err", err)
		return
	}
	c.rt.mu.Lock()
	defer c.rt.mu.Unlock()
	el := c.rt.clock.Elapsed()
	for id, l := range c.rt.lanes {
		l.day, l.today, l.dayAt = day, counts[id], el
		if box {
			l.sent = l.sent[:0] // counted again (after a jump of the clock)
		}
		for _, t := range recent[id] {
			if ago := now.Sub(t); ago >= 0 {
				l.sent = append(l.sent, el-ago)
			}
		}
		l.trim(el)
	}
}

// keep is how long a lane remembers its sends: its rate's period, and
// the minute load is measured over.
func (l *lane) keep() time.Duration { return max(l.opts.Per, time.Minute) }

func (l *lane) trim(now time.Duration) {
	i := 0
	for i < len(l.sent) && l.sent[i] <= now-l.keep() {
		i++
	}
	l.sent = l.sent[i:]
}

func (l *lane) since(now, d time.Duration) int {
	n := 0
	for _, t := range l.sent {
		if t > now-d {
			n++
		}
	}
	return n
}

// newDay starts the count of a new day at a later date, or once a whole
// day has passed by the monotonic clock whatever the date: a clock set
// back (or set forward and corrected) must not give the carrier a second
// day's parts in one.
func (l *lane) newDay(wall time.Time, now time.Duration) {
	if day := wall.Local().Format(time.DateOnly); day > l.day || now-l.dayAt >= 24*time.Hour {
		l.day, l.today, l.dayAt = day, 0, now
	}
}

// limited says, when the lane is at a limit, why and how long (of the
// clock) until it can take a part; "" when it can.
func (l *lane) limited(now time.Duration, wall time.Time) (string, time.Duration) {
	l.newDay(wall, now)
	if l.opts.DailyLimit > 0 && l.today+l.inflight >= l.opts.DailyLimit {
		y, m, d := wall.Local().Date()
		wait := time.Date(y, m, d+1, 0, 0, 0, 0, time.Local).Sub(wall)
		if wall.Local().Format(time.DateOnly) < l.day {
			wait = l.dayAt + 24*time.Hour - now // the clock went back
		}
		return fmt.Sprintf("daily limit of %d parts reached (sent %d today)", l.opts.DailyLimit, l.today), max(wait, time.Second)
	}
	if l.opts.Rate > 0 {
		in := l.since(now, l.opts.Per)
		if in+l.inflight >= l.opts.Rate {
			wait := l.opts.Per // in flight: one ends, and its slot counts from then
			if over := in + l.inflight - l.opts.Rate; over < in {
				// The window frees a slot when its oldest parts leave it.
				recent := l.sent[len(l.sent)-in:]
				wait = recent[over] + l.opts.Per - now
			}
			return fmt.Sprintf("rate %s reached", rateText(l.opts.Rate, l.opts.Per)), max(wait, time.Millisecond)
		}
	}
	return "", 0
}

func rateText(n int, per time.Duration) string {
	switch per {
	case time.Second:
		return fmt.Sprintf("%d/s", n)
	case time.Minute:
		return fmt.Sprintf("%d/min", n)
	case time.Hour:
		return fmt.Sprintf("%d/h", n)
	}
	return fmt.Sprintf("%d/%s", n, per)
}

// prefixLen is the length of the longest of the lane's prefixes number
// starts with (0: none).
func (l *lane) prefixLen(number string) int {
	best := 0
	for _, p := range l.opts.Prefixes {
		if strings.HasPrefix(number, p) && len(p) > best {
			best = len(p)
		}
	}
	return best
}

// pick is what a part needs of the choice of its modem.
type pick struct {
	to      string
	forced  string          // the message's own modem: that one or none
	stick   string          // the modem the message's first parts went through
	prefer  string          // the modem the message answers (it came in on it)
	exclude map[string]bool // modems that failed this part
	// alert is a balance alert: it may go through a modem paused for
	// its low balance when no other can take it (balance.go).
	alert bool
}

// errLimited is a part that must wait for a modem's limit: it stays
// queued, its attempt not counted.
var errLimited = errors.New("waiting for a modem's limit")

// acquire chooses the modem for one part and takes a place on it (in
// flight until release). Among the modems that may send now (ready,
// registered, not receive-only, not rested, within their limits) it
// takes the forced or sticky one, else the one the message answers,
// else those whose prefixes match the number longest, and among them
// the least loaded (parts in flight and sent in the last minute); a
// rested modem only when no other may send. When none may send, the
// error says why and how long to wait: bridge.Unavailable for limits
// (the message waits, uncounted, while others go), bridge.Outage when
// no modem is ready at all.
func (c *Connector) acquire(ctx context.Context, p pick) (string, hw.Modem, error) {
	c.lanesInit()
	cands := c.order
	switch {
	case p.forced != "":
		cands = []string{p.forced}
	case p.stick != "":
		cands = []string{p.stick}
	}
	ready := map[string]bool{}
	for _, id := range cands {
		if m, ok := c.modems[id]; ok {
			if st, err := m.Status(ctx); err == nil && st.CanSend() {
				ready[id] = true
			}
		}
	}
	c.rt.mu.Lock()
	defer c.rt.mu.Unlock()
	now, wall := c.rt.clock.Elapsed(), c.rt.clock.Now()
	var why []string
	var wait, down time.Duration
	waitFor := func(d time.Duration) {
		if wait == 0 || d < wait {
			wait = d
		}
	}
	best, bestLen, bestLoad := "", -1, 0
	rested := "" // the last resort: better than none
	paused := "" // an alert's last resort
	for _, id := range cands {
		l := c.rt.lanes[id]
		switch {
		case l == nil:
			why = append(why, id+": not configured")
			continue
		case l.opts.ReceiveOnly:
			why = append(why, id+": receive-only (send = false)")
			continue
		case p.exclude[id]:
			continue
		case !ready[id]:
			why = append(why, id+": not ready or not registered")
			if l.downAt == 0 {
				l.downAt = now
			}
			down = max(down, now-l.downAt)
			continue
		}
		if c.router.Paused(id) {
			// An operator's pause: nothing goes through it, not even
			// an alert, until outpost resume.
			why = append(why, id+": paused (outpost resume "+id+")")
			if l.downAt == 0 {
				l.downAt = now
			}
			down = max(down, now-l.downAt)
			continue
		}
		if pw := c.paused(id); pw != "" {
			// Low balance: only alerts, and only when no other modem
			// can take them. A message only it will do waits as for a
			// modem that is down: a pause lasts until a balance check,
			// hours maybe.
			why = append(why, id+": paused: "+pw)
			if p.alert && paused == "" {
				paused = id
			}
			if l.downAt == 0 {
				l.downAt = now
			}
			down = max(down, now-l.downAt)
			continue
		}
		l.downAt = 0
		l.trim(now)
		if reason, d := l.limited(now, wall); reason != "" {
			why = append(why, fmt.Sprintf("%s: %s, next in %s", id, reason, c.rt.clock.Real(d).Round(time.Millisecond)))
			waitFor(d)
			continue
		}
		if l.until > now {
			if rested == "" {
				rested = id
			}
			continue
		}
		n, load := l.prefixLen(p.to), l.inflight+l.since(now, time.Minute)
		if id == p.prefer {
			n = 1 << 20
		}
		if n > bestLen || (n == bestLen && load < bestLoad) {
			best, bestLen, bestLoad = id, n, load
		}
	}
	if best == "" {
		// A modem rested while others can send is given nothing; when
		// none can, it is tried again, as the dispatcher's backoff
		// allows: resting it would only hold everything back.
		best = rested
	}
	if best == "" {
		best = paused
	}
	if best != "" {
		l := c.rt.lanes[best]
		l.inflight++
		l.newDay(wall, now)
		return best, c.modems[best], nil
	}
	err := fmt.Errorf("no modem can take it now: %s", strings.Join(why, "; "))
	switch {
	case wait > 0:
		return "", nil, bridge.Unavailable(fmt.Errorf("%w: %w", errLimited, err), c.rt.clock.Real(wait))
	case p.forced != "" || p.stick != "":
		// Only this modem will do: the message waits for it while the
		// others' messages go, looked at less often the longer it is
		// down (its history gets a line each time).
		return "", nil, bridge.Unavailable(fmt.Errorf("%w: %w", hw.ErrNotReady, err), c.rt.clock.Real(min(max(down/4, 5*time.Second), 5*time.Minute)))
	}
	return "", nil, bridge.Outage(fmt.Errorf("%w: %w", hw.ErrNotReady, err))
}

// release ends a part's place on a modem: sent (counted toward its
// limits from now, when the modem answered: the network had it by then)
// or failed (counted toward its rest when the modem or the network is
// at fault).
func (c *Connector) release(id string, err error) {
	c.rt.mu.Lock()
	defer c.rt.mu.Unlock()
	l := c.rt.lanes[id]
	l.inflight--
	now := c.rt.clock.Elapsed()
	if err == nil {
		l.sent = append(l.sent, now)
		l.today++
		l.fails, l.rest = 0, restMin
		return
	}
	if hw.Classify(err) == hw.Permanent {
		return // the message's fault, not the modem's
	}
	l.lastErr = err.Error()
	l.fails++
	if l.fails >= restAfter {
		l.until = now + l.rest
		l.rests++
		c.Log.Warn("modem rested: it failed too often in a row; other modems take its parts", "modem", id, "failures", l.fails,
			"rest", c.rt.clock.Real(l.rest).String(), "err", err)
		l.fails, l.rest = 0, min(l.rest*2, restMax)
	}
}

// failWait is how long a message that only one modem will do waits
// after that modem failed it: longer the more it fails in a row.
func (c *Connector) failWait(id string) time.Duration {
	c.rt.mu.Lock()
	defer c.rt.mu.Unlock()
	d := 2 * time.Second
	for range c.rt.lanes[id].fails {
		d = min(2*d, 5*time.Minute)
	}
	return c.rt.clock.Real(d)
}

// jitter waits a random part of the modem's jitter before a part.
func (c *Connector) jitter(ctx context.Context, id string) {
	j := c.Modems[id].Jitter
	if j <= 0 {
		return
	}
	t := time.NewTimer(c.rt.clock.Real(rand.N(j)))
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// canSendSome reports whether some modem may take a part now: a modem
// paused for its balance counts (an alert may still go through it; the
// other messages claimed are put back, uncounted, with the reason).
func (c *Connector) canSendSome(ctx context.Context) bool {
	id, _, err := c.acquire(ctx, pick{alert: true})
	if err != nil {
		return false
	}
	c.rt.mu.Lock()
	c.rt.lanes[id].inflight--
	c.rt.mu.Unlock()
	return true
}

// RoutingStatus is every modem's part in sending, by id.
func (c *Connector) RoutingStatus() any {
	c.lanesInit()
	c.rt.mu.Lock()
	defer c.rt.mu.Unlock()
	now, wall := c.rt.clock.Elapsed(), c.rt.clock.Now()
	out := map[string]RouteState{}
	for id, l := range c.rt.lanes {
		l.trim(now)
		l.newDay(wall, now)
		s := RouteState{Send: !l.opts.ReceiveOnly, Prefixes: l.opts.Prefixes, DailyLimit: l.opts.DailyLimit, InFlight: l.inflight,
			LastMinute: l.since(now, time.Minute), Today: l.today, Failures: l.fails, Rests: l.rests, LastError: l.lastErr}
		if l.opts.Rate > 0 {
			s.Rate = rateText(l.opts.Rate, l.opts.Per)
		}
		if l.until > now {
			s.RestedFor = c.rt.clock.Real(l.until - now).Round(time.Second).String()
		}
		if reason, d := l.limited(now, wall); reason != "" {
			s.Waiting = fmt.Sprintf("%s, next in %s", reason, c.rt.clock.Real(d).Round(time.Second))
		}
		out[id] = s
	}
	return out
}

// Parallel implements bridge.Parallel: one part at a time per modem
// that may send.
func (c *Connector) Parallel() int {
	n := 0
	for _, id := range c.order {
		if !c.Modems[id].ReceiveOnly {
			n++
		}
	}
	return max(n, 1)
}
