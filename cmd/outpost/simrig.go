package main

import (
	"fmt"
	"os"
	"strconv"
	"sync"

	bsms "github.com/outpost-sms/outpost/bridge/sms"
	"github.com/outpost-sms/outpost/hw/sim"
)

// simSpeed is the clock of the in-process simulated network and of the
// carrier limits: tests only, OUTPOST_SIM_SPEED=N runs both N times
// faster than real time, so that "6/min" over a burst of 100 is
// rehearsed in seconds, timed by the network's clock, not by sleeps.
var simSpeed = sync.OnceValues(func() (*sim.Clock, error) {
	v := os.Getenv("OUTPOST_SIM_SPEED")
	if v == "" {
		return nil, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 1 {
		return nil, fmt.Errorf("OUTPOST_SIM_SPEED=%q: want a number ≥ 1", v)
	}
	return sim.NewClock(f), nil
})

// limitsClock is the clock the SMS connector's limits count in: the
// box's, or the fast simulated one.
func limitsClock() bsms.Clock {
	if c, _ := simSpeed(); c != nil {
		return c
	}
	return nil
}
