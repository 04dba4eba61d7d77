package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
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

// simControlLine runs one control line on a simulated modem and logs
// what came of it. plug is nil for the daemon's in-process modems, which
// cannot be unplugged.
func simControlLine(m *sim.Modem, plug *simPlug, path, line string, log *slog.Logger) error {
	verb, arg, _ := strings.Cut(strings.TrimSpace(line), " ")
	arg = strings.TrimSpace(arg)
	var err error
	switch verb {
	case "deliver", "report":
		err = m.Inject(arg, verb == "report")
	case "network", "send-error", "fail-delete", "balance", "ussd-delay", "ussd-packed":
		err = simFault(m, verb, arg)
	case "hang", "garbage", "registration", "slow-send", "reset-delay":
		err = simMisbehave(m, verb, arg)
	case "call", "store", "store-fill":
		err = simCallOrStore(m, verb, arg)
	case "unplug", "replug":
		switch {
		case plug == nil:
			err = fmt.Errorf("%s: only a modem of outpost sim can be unplugged", verb)
		case verb == "unplug":
			err = plug.unplug()
		default:
			err = plug.replug(arg, path)
		}
	case "":
		return nil
	default:
		err = fmt.Errorf("unknown command %q (want deliver HEX, report HEX, network on|off, send-error CODE, fail-delete N, hang on|off, garbage on|off, registration on|none|denied, slow-send DURATION, reset-delay DURATION, call NUMBER [RINGS [EVERY]], store N, store-fill N [KIND], balance N, ussd-delay DURATION, ussd-packed on|off, unplug or replug [PATH])", verb)
	}
	if err != nil {
		log.Error("sim control", "err", err)
	} else {
		log.Info("sim control: done", "command", verb, "arg", arg)
	}
	return err
}

// serveSimControl takes outpost sim --control's lines for one of the
// daemon's in-process simulated modems on a unix socket (one line, one
// answer: "ok" or "error: …"), so a user can rehearse failures on the
// default modem and tests can make them.
func serveSimControl(ctx context.Context, wg *sync.WaitGroup, path string, m *sim.Modem, log *slog.Logger) error {
	os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-ctx.Done()
		ln.Close()
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				stop := context.AfterFunc(ctx, func() { c.Close() })
				defer stop()
				sc := bufio.NewScanner(c)
				sc.Buffer(make([]byte, 64<<10), 64<<10)
				for sc.Scan() {
					answer := "ok"
					if err := simControlLine(m, nil, "", sc.Text(), log); err != nil {
						answer = "error: " + err.Error()
					}
					if _, err := io.WriteString(c, answer+"\n"); err != nil {
						return
					}
				}
			}()
		}
	}()
	return nil
}
