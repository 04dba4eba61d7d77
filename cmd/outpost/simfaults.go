package main

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/outpost-sms/outpost/hw/sim"
)

const simFaultHelp = `"hang on|off" stops the modem answering (AT+CFUN=1,1 still resets it); "garbage on|off" makes it answer noise; "registration none|denied|on" takes it off the network (+CREG: 0 or 3) and back; "slow-send DURATION" delays every AT+CMGS answer; "reset-delay DURATION" is how long it searches for the network after AT+CFUN=1,1 (2s); "unplug" makes the device vanish (the SIM keeps what it holds); "replug [PATH]" plugs it back in, at PATH if given (as after a reboot that renumbered the USB ports)`

// simMisbehave switches one of the field faults of a simulated modem
// (outpost sim --control).
func simMisbehave(m *sim.Modem, verb, arg string) error {
	f := m.Faults()
	onOff := func() (bool, error) {
		if arg != "on" && arg != "off" {
			return false, fmt.Errorf("%s %q: want on or off", verb, arg)
		}
		return arg == "on", nil
	}
	var err error
	switch verb {
	case "hang":
		f.Hang, err = onOff()
	case "garbage":
		f.Garbage, err = onOff()
	case "registration":
		f.Registration, err = sim.ParseRegistration(arg)
	case "slow-send", "reset-delay":
		d, perr := time.ParseDuration(arg)
		if perr != nil || d < 0 {
			return fmt.Errorf("%s %q: want a duration such as 5s", verb, arg)
		}
		if verb == "slow-send" {
			f.SlowSend = d
		} else {
			f.ResetDelay = d
		}
	}
	if err != nil {
		return err
	}
	m.SetFaults(f)
	return nil
}

// simPlug is the simulated modem's USB plug: unplug closes its pty (the
// device vanishes), replug opens a new one, at another path if asked.
type simPlug struct {
	mu      sync.Mutex
	cur     *sim.PTY // nil while unplugged
	plugged chan *sim.PTY
}

func (p *simPlug) unplug() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == nil {
		return errors.New("unplug: already unplugged")
	}
	err := p.cur.Close()
	p.cur = nil
	return err
}

func (p *simPlug) replug(path, last string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur != nil {
		return errors.New("replug: still plugged in (unplug first)")
	}
	if path == "" {
		path = last
	}
	np, err := sim.OpenPTY(path)
	if err != nil {
		return fmt.Errorf("replug: %w", err)
	}
	p.cur = np
	p.plugged <- np
	return nil
}

func (p *simPlug) isUnplugged() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cur == nil
}

func (p *simPlug) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur != nil {
		p.cur.Close()
	}
}
