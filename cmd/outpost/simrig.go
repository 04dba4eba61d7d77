package main

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
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

// simControl serves, tests only (OUTPOST_SIM_CONTROL=PATH), a unix socket
// at PATH that takes lines "MODEM VERB ARG" changing an in-process
// simulated modem's faults: the verbs of outpost sim --control and
// "hang on|off". Each line is answered "ok" or with the error.
func simControl(ctx context.Context, sims map[string]*sim.Modem, log *slog.Logger) error {
	path := os.Getenv("OUTPOST_SIM_CONTROL")
	if path == "" {
		return nil
	}
	os.Remove(path)
	l, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("OUTPOST_SIM_CONTROL: %w", err)
	}
	go func() {
		<-ctx.Done()
		l.Close()
	}()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					err := simLine(sims, sc.Text())
					log.Info("sim control", "line", sc.Text(), "err", err)
					if err != nil {
						fmt.Fprintln(c, "error:", err)
					} else {
						fmt.Fprintln(c, "ok")
					}
				}
			}()
		}
	}()
	return nil
}

func simLine(sims map[string]*sim.Modem, line string) error {
	f := strings.Fields(line)
	if len(f) != 3 {
		return fmt.Errorf("%q: want MODEM VERB ARG", line)
	}
	m, ok := sims[f[0]]
	if !ok {
		return fmt.Errorf("no simulated modem %q", f[0])
	}
	if f[1] == "hang" {
		faults := m.Faults()
		faults.Hang = f[2] == "on"
		m.SetFaults(faults)
		return nil
	}
	return simFault(m, f[1], f[2])
}
