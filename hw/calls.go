package hw

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// CallConfig says what a modem does with incoming voice calls. Outpost
// never answers one: a call is a signal (a "missed call"), logged with
// the caller's number.
type CallConfig struct {
	// Hangup hangs a call up (ATH) once it has rung HangupAfter times
	// (default 2); without it the caller rings until they give up.
	Hangup      bool
	HangupAfter int
	// HandUp hands each call up on Incoming, once, when it is over.
	HandUp bool
	// EndAfter is how long a call may go without a RING before it counts
	// as over, for modems that say nothing when the caller gives up
	// (default 8s: networks ring every 3 to 6 s).
	EndAfter time.Duration
}

// Call is one incoming voice call.
type Call struct {
	// ID is unique to the call: it recognises a call handed up twice.
	ID string `json:"id"`
	// Number is the caller's (+CLIP); "" when withheld or unknown.
	Number string `json:"number,omitempty"`
	Rings  int    `json:"rings"`
	// HungUp is set when Outpost hung up; else the caller gave up.
	HungUp bool `json:"hung_up"`
	// At is the first ring by the box's clock: for people, not timing.
	At time.Time `json:"at"`
}

// String describes the call for logs and status.
func (c Call) String() string {
	from := c.Number
	if from == "" {
		from = "a withheld number"
	}
	how := "the caller gave up"
	if c.HungUp {
		how = "hung up by Outpost"
	}
	return fmt.Sprintf("from %s at %s, %d ring(s), %s", from, c.At.Format(time.RFC3339), c.Rings, how)
}

// callState is the call ringing now. It belongs to the supervisor
// goroutine (work items) and outlives a connection: the rings of a call
// that go on after a reconnect are the same call, handed up once.
type callState struct {
	cur *Call
	// ended: cur is over (hung up or handed up); its late rings are
	// absorbed until it has been quiet for EndAfter.
	ended bool
	// clipSeen: cur's +CLIP came, so its number is known.
	clipSeen bool
	// waiting: a hang-up waits for the +CLIP that follows a RING.
	waiting bool
	// unclipped: the latest RING has had no +CLIP yet; when the +CLIP
	// names another caller, that ring is the new call's.
	unclipped bool
	last      time.Time // monotonic: cur's last RING or +CLIP
	timer     *time.Timer
	// clip: the modem took AT+CLIP=1.
	clip bool
}

// initCalls asks for the caller's number with every RING and listens for
// the call URCs. A modem that refuses +CLIP still reports RINGs.
func (m *ATModem) initCalls(c *conn) error {
	_, err := m.command(c, "+CLIP=1", m.cfg.CommandTimeout)
	if errors.Is(err, ErrNotReady) {
		return err
	}
	m.calls.clip = err == nil
	if err != nil {
		m.log.Info("modem refused caller identification (AT+CLIP=1): calls are logged without the caller's number", "err", err)
	}
	ring := func([]string) { m.post(func(ctx context.Context, c *conn) error { return m.onRing(ctx, c) }) }
	for _, ind := range []struct {
		prefix string
		h      func([]string)
	}{
		{"RING", ring},
		{"+CRING:", ring},
		{"+CLIP:", func(l []string) {
			number := parseCLIP(l[0])
			m.post(func(ctx context.Context, c *conn) error { return m.onCLIP(ctx, c, number) })
		}},
		{"NO CARRIER", func([]string) { m.post(func(ctx context.Context, c *conn) error { return m.onNoCarrier(ctx) }) }},
	} {
		if err := c.at.AddIndication(ind.prefix, ind.h); err != nil {
			return fmt.Errorf("init: indication %s: %w", ind.prefix, err)
		}
	}
	return nil
}

// parseCLIP reads the number of `+CLIP: "<number>",<type>,…`: with type
// 145 (international) a number given without its + gets it back.
func parseCLIP(line string) string {
	f := strings.Split(strings.TrimSpace(strings.TrimPrefix(line, "+CLIP:")), ",")
	number := strings.Trim(strings.TrimSpace(f[0]), `"`)
	if len(f) > 1 && strings.TrimSpace(f[1]) == "145" && number != "" && !strings.HasPrefix(number, "+") {
		number = "+" + number
	}
	return number
}

// callURC tells the lines of call URCs apart from a command's answer: the
// AT engine gives an indication that comes during a command to both.
func callURC(cmd, line string) bool {
	switch {
	case line == "RING", line == "NO CARRIER", strings.HasPrefix(line, "+CRING:"):
		return true
	case strings.HasPrefix(line, "+CLIP:"):
		return !strings.HasPrefix(cmd, "+CLIP")
	}
	return false
}

func dropCallURCs(cmd string, info []string) []string {
	out := info[:0:0]
	for _, l := range info {
		if !callURC(cmd, l) {
			out = append(out, l)
		}
	}
	return out
}

// post runs f on the supervisor goroutine, in the current session, with
// the AT commands of SMS traffic: never blocks its caller.
func (m *ATModem) post(f func(context.Context, *conn) error) {
	select {
	case m.work <- f:
	default:
		go func() {
			select {
			case m.work <- f:
			case <-m.done:
			}
		}()
	}
}

func (m *ATModem) newCall(number string) {
	cs := &m.calls
	cs.cur = &Call{ID: fmt.Sprintf("%016x", rand.Uint64()), Number: number, At: time.Now()}
	cs.ended, cs.clipSeen, cs.waiting, cs.unclipped = false, false, false, false
}

// touch notes a sign of life of the current call and restarts its quiet
// timer.
func (m *ATModem) touch() {
	cs := &m.calls
	cs.last = time.Now()
	if cs.timer != nil {
		cs.timer.Stop()
	}
	id := cs.cur.ID
	cs.timer = time.AfterFunc(m.cfg.Calls.EndAfter, func() {
		m.post(func(ctx context.Context, _ *conn) error { return m.callQuiet(ctx, id) })
	})
}

func (m *ATModem) onRing(ctx context.Context, c *conn) error {
	if m.calls.cur == nil {
		m.newCall("")
	}
	m.calls.cur.Rings++
	m.calls.unclipped = true
	m.touch()
	return m.maybeHangup(ctx, c)
}

func (m *ATModem) onCLIP(ctx context.Context, c *conn, number string) error {
	cs := &m.calls
	rings := 0
	if cs.cur != nil && cs.cur.Number != "" && number != "" && cs.cur.Number != number {
		// Another caller: the call before is over, and the ring this
		// +CLIP follows is the new call's.
		if cs.unclipped && cs.cur.Rings > 0 {
			cs.cur.Rings--
			rings = 1
		}
		if !cs.ended {
			if err := m.endCall(ctx); err != nil {
				return err
			}
		}
		cs.cur = nil
	}
	if cs.cur == nil {
		m.newCall(number)
		cs.cur.Rings = rings
	} else if cs.cur.Number == "" {
		cs.cur.Number = number
	}
	cs.clipSeen, cs.unclipped = true, false
	m.touch()
	return m.maybeHangup(ctx, c)
}

// onNoCarrier: the caller gave up (some modems say so).
func (m *ATModem) onNoCarrier(ctx context.Context) error {
	cs := &m.calls
	if cs.cur == nil {
		return nil
	}
	var err error
	if !cs.ended {
		err = m.endCall(ctx)
	}
	cs.cur = nil
	return err
}

// callQuiet ends call id when it has not rung for EndAfter.
func (m *ATModem) callQuiet(ctx context.Context, id string) error {
	cs := &m.calls
	if cs.cur == nil || cs.cur.ID != id || time.Since(cs.last) < m.cfg.Calls.EndAfter {
		return nil
	}
	var err error
	if !cs.ended {
		err = m.endCall(ctx)
	}
	cs.cur = nil
	return err
}

// maybeHangup hangs the current call up once it has rung enough, through
// the AT engine like every SMS command.
func (m *ATModem) maybeHangup(ctx context.Context, c *conn) error {
	cs := &m.calls
	if !m.cfg.Calls.Hangup || cs.cur == nil || cs.ended || cs.cur.Rings < m.cfg.Calls.HangupAfter {
		return nil
	}
	if cs.clip && !cs.clipSeen {
		// The +CLIP of a ring follows its RING: wait for it a moment,
		// or the call would be logged without its number.
		if !cs.waiting {
			cs.waiting = true
			id := cs.cur.ID
			time.AfterFunc(time.Second, func() {
				m.post(func(ctx context.Context, c *conn) error {
					if cs.cur == nil || cs.cur.ID != id {
						return nil
					}
					cs.clipSeen = true
					return m.maybeHangup(ctx, c)
				})
			})
		}
		return nil
	}
	if _, err := m.command(c, "H", m.cfg.CommandTimeout); err != nil {
		if errors.Is(err, ErrNotReady) {
			return err // reconnect; the next ring tries again
		}
		m.log.Warn("could not hang up the call; trying again at the next ring", "err", err)
		return nil
	}
	cs.cur.HungUp = true
	return m.endCall(ctx)
}

// endCall logs the current call, counts it and, when asked, hands it up.
func (m *ATModem) endCall(ctx context.Context) error {
	cs := &m.calls
	cs.ended = true
	call := *cs.cur
	m.log.Info("incoming call", "from", call.Number, "rings", call.Rings, "hung_up", call.HungUp)
	m.setStatus(func(s *Status) { s.Calls, s.LastCall = s.Calls+1, call.String() })
	if !m.cfg.Calls.HandUp {
		return nil
	}
	return m.handUp(ctx, Inbound{Modem: m.cfg.ID, Call: &call})
}

// handUpReleasedCalls hands up again the calls the caller could not
// commit.
func (m *ATModem) handUpReleasedCalls(ctx context.Context) error {
	m.mu.Lock()
	calls := m.releasedCalls
	m.releasedCalls = nil
	m.mu.Unlock()
	for i, call := range calls {
		if err := m.handUp(ctx, Inbound{Modem: m.cfg.ID, Call: &call}); err != nil {
			m.mu.Lock()
			m.releasedCalls = append(m.releasedCalls, calls[i:]...)
			m.mu.Unlock()
			return err
		}
	}
	return nil
}

// defaults fills what a CallConfig leaves out.
func (cc *CallConfig) defaults() {
	if cc.HangupAfter <= 0 {
		cc.HangupAfter = 2
	}
	if cc.EndAfter <= 0 {
		cc.EndAfter = 8 * time.Second
	}
}
