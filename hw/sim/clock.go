package sim

import "time"

// Clock is a network clock that runs Speed times faster than real time
// from when it was made, so that a test can rehearse an hour of a
// carrier's limits in a couple of minutes: set Network.Now to its Now,
// and have what keeps the limits count in it.
type Clock struct {
	start time.Time // wall and monotonic
	speed float64
}

// NewClock returns a clock at the current time running speed times
// faster than real time (speed ≥ 1).
func NewClock(speed float64) *Clock { return &Clock{start: time.Now(), speed: max(speed, 1)} }

// Elapsed is the clock's time since it was made.
func (c *Clock) Elapsed() time.Duration {
	return time.Duration(float64(time.Since(c.start)) * c.speed)
}

// Now is the clock's wall time.
func (c *Clock) Now() time.Time { return c.start.Add(c.Elapsed()) }

// Real is how long d of this clock takes in real time.
func (c *Clock) Real(d time.Duration) time.Duration { return time.Duration(float64(d) / c.speed) }
