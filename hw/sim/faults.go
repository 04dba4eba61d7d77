package sim

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Misbehaviour are the faults of the field that tests and
// "outpost sim --control" switch at run time, on top of Faults' own.
// AT+CFUN=1,1 (a reset) clears Hang and Garbage, as replugging a stuck
// modem does, and takes the modem off the network for ResetDelay.
type Misbehaviour struct {
	// Garbage makes the modem answer every command with noise and no
	// final result, as a wrong baud rate or a second program on the port
	// does.
	Garbage bool
	// Registration, when "none" or "denied", takes the modem off the
	// network (+CREG: 0 or 3; sends answer +CMS ERROR: 331).
	Registration string
	// SlowSend delays the answer to every AT+CMGS.
	SlowSend time.Duration
	// ResetDelay is how long the modem searches for the network after
	// AT+CFUN=1,1 (default 2s).
	ResetDelay time.Duration
}

// Resets returns how many times the modem was reset (AT+CFUN=1,1).
func (m *Modem) Resets() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.resets
}

// misbehave runs before a command: it reports whether the command was
// swallowed by a fault (no answer, or noise). A reset gets through a hang:
// on real modems the radio's command handler often still runs when the SMS
// stack is stuck.
func (s *session) misbehave(line string) bool {
	m := s.m
	m.mu.Lock()
	f := m.faults
	m.mu.Unlock()
	if reset := strings.EqualFold(strings.ReplaceAll(line, " ", ""), "AT+CFUN=1,1"); reset {
		s.reset()
		return true
	}
	switch {
	case f.Hang:
		return true
	case f.Garbage:
		s.write("\r\n\x7f#\xfe~?%\x00" + strings.Repeat("\xa5", 7) + "\r\n+C\xffS: ,,\r\n")
		return true
	}
	return false
}

// reset is AT+CFUN=1,1: OK, then the modem restarts: faults of the
// firmware cleared, the session's settings back to the defaults, off the
// network until it has searched for ResetDelay.
func (s *session) reset() {
	m := s.m
	m.mu.Lock()
	m.faults.Hang, m.faults.Garbage = false, false
	m.resets++
	d := m.faults.ResetDelay
	if d == 0 {
		d = 2 * time.Second
	}
	m.searchUntil = time.Now().Add(d)
	s.echo, s.cmee, s.mt, s.ds, s.csms, s.cmgf = true, 0, 0, 0, 0, 0
	m.mu.Unlock()
	m.net.log.Info("sim: reset (AT+CFUN=1,1)", "number", m.number, "searching", d.String())
	s.ok()
}

// network answers the commands about the radio and the network that
// Gammu's networkinfo and the resets use; it reports whether it knew name.
func (s *session) network(name, op, arg string, noNet bool) bool {
	switch name {
	case "+CFUN": // a reset (=1,1) is taken by misbehave
		switch op {
		case "?":
			s.info("+CFUN: 1")
		case "=?":
			s.info("+CFUN: (0,1,4),(0,1)")
		}
	case "+CGREG":
		s.cgreg(op, arg, noNet)
	case "+CGATT":
		switch op {
		case "?":
			if noNet {
				s.info("+CGATT: 0")
			} else {
				s.info("+CGATT: 1")
			}
		case "=?":
			s.info("+CGATT: (0,1)")
		}
	default:
		return false
	}
	return true
}

// offNet says whether the modem is off the network: by a fault, or still
// searching after a reset. Called with m.mu held.
func (m *Modem) offNet() bool {
	return m.faults.NoNetwork || m.faults.Registration != "" || time.Now().Before(m.searchUntil)
}

// cregStat is the +CREG <stat> the faults impose, or -1. Called with
// m.mu held.
func (m *Modem) cregStat() int {
	switch {
	case m.faults.Registration == "none":
		return 0
	case m.faults.Registration == "denied":
		return 3
	case m.faults.NoNetwork || time.Now().Before(m.searchUntil):
		return 2
	}
	return -1
}

// slowSend waits out the SlowSend fault before an AT+CMGS is answered.
func (m *Modem) slowSend() {
	m.mu.Lock()
	d := m.faults.SlowSend
	m.mu.Unlock()
	if d > 0 {
		m.net.log.Info("sim: slow send", "delay", d.String())
		time.Sleep(d)
	}
}

// ParseRegistration checks a Registration fault's value.
func ParseRegistration(v string) (string, error) {
	switch v {
	case "on", "":
		return "", nil
	case "none", "denied":
		return v, nil
	}
	return "", fmt.Errorf("registration %q: want on, none or denied", v)
}

// regLine is a +CREG/+CGREG answer; with <n> 2 it gives the cell's
// location, which Gammu's networkinfo shows.
func regLine(name string, n, stat int) string {
	if n == 2 && (stat == 1 || stat == 5) {
		return fmt.Sprintf(`%s: %d,%d,"00A1","1B3F"`, name, n, stat)
	}
	return fmt.Sprintf("%s: %d,%d", name, n, stat)
}

// cops answers +COPS: the operator in the format asked with AT+COPS=3,<f>.
func (s *session) cops(op, arg string, noNet bool) {
	switch op {
	case "?":
		names := []string{`"Outpost Sim"`, `"OSim"`, `"00101"`}
		if noNet {
			s.info("+COPS: 0")
		} else {
			s.info(fmt.Sprintf("+COPS: 0,%d,%s,0", s.copsFmt, names[s.copsFmt]))
		}
	case "=?":
		s.info(`+COPS: (2,"Outpost Sim","OSim","00101",0),,(0-4),(0-2)`)
	case "=":
		if v := atois(arg); len(v) >= 2 && v[0] == 3 && v[1] >= 0 && v[1] <= 2 {
			s.copsFmt = v[1]
		}
	}
}

// cgreg answers +CGREG (packet domain registration), registered when the
// modem is on the network.
func (s *session) cgreg(op, arg string, noNet bool) {
	switch op {
	case "?":
		stat := 1
		if noNet {
			stat = 2
		}
		s.info(regLine("+CGREG", s.cgregN, stat))
	case "=?":
		s.info("+CGREG: (0-2)")
	case "=":
		s.cgregN, _ = strconv.Atoi(arg)
	}
}
