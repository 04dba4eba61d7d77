package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/outpost-sms/outpost/hw/sim"
	"github.com/outpost-sms/outpost/pdu"
)

// simControlCallsStore is the help of the call and store commands of
// outpost sim --control.
const simControlCallsStore = `"call NUMBER [RINGS [EVERY]]" rings the modem from NUMBER ("withheld" hides it) RINGS times (default 5), one RING (and +CLIP) every EVERY (default 1s), until it hangs up; "store N" gives the SIM N message slots (1-30: messages beyond are kept by the network until there is room); "store-fill N [read|unread|sent|unsent]" leaves N messages on the SIM as another program would`

// simCallOrStore runs a call or store command of outpost sim --control.
func simCallOrStore(m *sim.Modem, verb, arg string) error {
	f := strings.Fields(arg)
	switch verb {
	case "call":
		if len(f) < 1 || len(f) > 3 {
			return fmt.Errorf("call %q: want NUMBER [RINGS [EVERY]]", arg)
		}
		number, rings, every := f[0], 5, time.Second
		if number == "withheld" {
			number = ""
		} else if err := pdu.ValidateNumber(number); err != nil {
			return fmt.Errorf("call %q: %w", f[0], err)
		}
		if len(f) > 1 {
			n, err := strconv.Atoi(f[1])
			if err != nil || n < 1 {
				return fmt.Errorf("call: rings %q: want a number of rings, at least 1", f[1])
			}
			rings = n
		}
		if len(f) > 2 {
			d, err := time.ParseDuration(f[2])
			if err != nil || d <= 0 {
				return fmt.Errorf("call: every %q: want a duration such as 1s", f[2])
			}
			every = d
		}
		return m.Call(number, rings, every)
	case "store":
		n, err := strconv.Atoi(arg)
		if err != nil {
			return fmt.Errorf("store %q: want a number of slots", arg)
		}
		return m.SetCapacity(n)
	}
	if len(f) < 1 || len(f) > 2 {
		return fmt.Errorf("store-fill %q: want N [read|unread|sent|unsent]", arg)
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n < 1 {
		return fmt.Errorf("store-fill %q: want a number of messages", f[0])
	}
	kind := "read"
	if len(f) > 1 {
		kind = f[1]
	}
	stored, err := m.Fill(n, kind)
	if err == nil && stored < n {
		err = fmt.Errorf("store-fill: the SIM had room for %d of %d", stored, n)
	}
	return err
}
