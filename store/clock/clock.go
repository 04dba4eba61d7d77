// Package clock is Outpost's view of time on a box with no real-time
// clock. A Raspberry Pi boots in 1970 (or at the time it last saved) and
// its clock jumps when NTP or GPS sets it, often right when the link comes
// back. The rules:
//
//   - A wall time is sane when it is not before Floor: the build date
//     (stamped with -ldflags "-X github.com/outpost-sms/outpost/store/clock.buildDate=YYYY-MM-DD",
//     otherwise the date in this file), never before 2025-01-01.
//   - Times are stored as wall times, as read. A time recorded while the
//     clock was not sane is recognised by being before Floor.
//   - Ages, timeouts, backoffs and "due" checks compare a stored time with
//     now only on one timeline: both sane, or both on the current run's
//     insane timeline. A time recorded while the clock was not sane never
//     expires anything once the clock is sane: it is rebased first.
//   - When the clock becomes sane (Watch sees the first sane time after an
//     insane one), every stored insane time is moved by the jump, so that
//     what was recorded d of elapsed (monotonic) time ago is now d before
//     now: a message queued 10 minutes before NTP set the clock is 10
//     minutes old, a send that expires "30m" after it was given still
//     expires 30 minutes of elapsed time after it was given.
//   - Insane times found when the daemon starts (recorded in an earlier
//     run, whose elapsed time is lost) are moved so that the newest of
//     them is "now": downtime is never counted as age.
//   - When the clock goes back, what waits and was recorded before the
//     jump (a queued retry, the hub queue, a long message's parts) is
//     moved back by the jump too, so a retry waits its backoff in elapsed
//     time, not the backoff plus the jump. At start, when those were
//     recorded after now (the clock is behind the last run's), they are
//     moved back so that the newest is now.
//   - A sane clock that jumps forward moves nothing: what was recorded
//     before looks older by the jump (NTP correcting a wrong but sane
//     clock; nothing tells it from time passing while the box was off).
//   - Times a user gives (not_before, expires as RFC 3339) are wall times
//     and stay so; a duration ("30m") is now plus the duration, recorded
//     like any other time.
//
// Monotonic time is what Elapsed returns; within a run it never jumps.
// It imports nothing of Outpost's.
package clock

import (
	"sync"
	"time"
)

// buildDate is set at build time; see the package doc.
var buildDate = "2026-12-01"

// minFloor is the floor whatever the build says.
var minFloor = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// Floor is the earliest sane wall time.
var Floor = floor(buildDate)

func floor(s string) time.Time {
	t, err := time.Parse("2006-01-02", s)
	if err != nil || t.Before(minFloor) {
		return minFloor
	}
	return t
}

// Sane reports whether t can be a real wall time (not before Floor).
func Sane(t time.Time) bool { return !t.Before(Floor) }

var origin = time.Now()

// Elapsed is the monotonic time since the process started.
func Elapsed() time.Duration { return time.Since(origin) }

// Jump is a step of the wall clock that elapsed time does not explain.
type Jump struct {
	// From is where the wall clock would be without the step (the last
	// reading plus the elapsed time since); To where it is.
	From, To time.Time
}

// By is the size of the step (negative: back).
func (j Jump) By() time.Duration { return j.To.Sub(j.From) }

// Watch follows the wall clock against elapsed time to tell jumps.
// Its zero value is ready; it is safe for concurrent use.
type Watch struct {
	mu      sync.Mutex
	started bool
	wall    time.Time
	mono    time.Duration
}

// Tolerance is how far the wall clock may drift from elapsed time between
// two readings before it counts as a jump (NTP slews by far less).
const Tolerance = 2 * time.Second

// Observe takes a reading (wall time and elapsed time) and returns the
// jump since the previous one, if there was one (ok).
func (w *Watch) Observe(wall time.Time, mono time.Duration) (j Jump, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	wall = wall.Round(0)
	if !w.started {
		w.started, w.wall, w.mono = true, wall, mono
		return Jump{}, false
	}
	expect := w.wall.Add(mono - w.mono)
	w.wall, w.mono = wall, mono
	if d := wall.Sub(expect); d > Tolerance || d < -Tolerance {
		return Jump{From: expect, To: wall}, true
	}
	return Jump{}, false
}

// Fake is a clock for tests: its wall time and elapsed time move together
// with Advance, and the wall time alone with Set.
type Fake struct {
	mu   sync.Mutex
	wall time.Time
	mono time.Duration
}

// NewFake returns a fake clock at wall time t.
func NewFake(t time.Time) *Fake { return &Fake{wall: t} }

// Now is the fake wall time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.wall
}

// Elapsed is the fake monotonic time.
func (f *Fake) Elapsed() time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mono
}

// Advance lets d pass.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.wall, f.mono = f.wall.Add(d), f.mono+d
}

// Set makes the wall clock jump to t (no time passes).
func (f *Fake) Set(t time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.wall = t
}
