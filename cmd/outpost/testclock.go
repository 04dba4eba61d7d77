package main

import (
	"fmt"
	"os"
	"time"

	"github.com/outpost-sms/outpost/store"
	"github.com/outpost-sms/outpost/store/clock"
)

// offsetClock is the system clock moved by a fixed offset: the wall clock
// of a box whose clock says another time; elapsed time is the real one.
type offsetClock struct{ off time.Duration }

func (c offsetClock) Now() time.Time         { return time.Now().Add(c.off) }
func (c offsetClock) Elapsed() time.Duration { return clock.Elapsed() }

// storeOptions are the store's options: tests only, OUTPOST_CLOCK=TIME
// (RFC 3339) starts the daemon's wall clock at TIME (quiet hours, say,
// are tested at 22:30 whatever the time of the run).
func storeOptions(o store.Options) (store.Options, error) {
	v := os.Getenv("OUTPOST_CLOCK")
	if v == "" {
		return o, nil
	}
	at, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return o, fmt.Errorf("OUTPOST_CLOCK=%q: want an RFC 3339 time: %v", v, err)
	}
	o.Clock = offsetClock{time.Until(at)}
	return o, nil
}
