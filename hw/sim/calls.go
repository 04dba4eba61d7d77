package sim

import (
	"errors"
	"fmt"
	"time"
)

// CallRecord is one call the network rang a modem with.
type CallRecord struct {
	From  string
	Rings int // RINGs written
	// HungUp: the terminal hung up (ATH or AT+CHUP); else the caller
	// gave up after the rings asked for.
	HungUp bool
}

// ringing is the call ringing now.
type ringing struct {
	rec  int // index in Modem.calls
	max  int
	stop chan struct{}
}

// Call rings the modem from number ("" withholds it): RING, and +CLIP
// when the terminal asked for it (AT+CLIP=1), at once and then every
// `every`, until the terminal hangs up or rings rings went unanswered:
// then the caller gives up (NO CARRIER). One call rings at a time.
func (m *Modem) Call(from string, rings int, every time.Duration) error {
	if rings < 1 || every <= 0 {
		return errors.New("a call needs at least one ring and a positive interval")
	}
	m.mu.Lock()
	if m.call != nil {
		m.mu.Unlock()
		return errors.New("a call is already ringing")
	}
	m.calls = append(m.calls, CallRecord{From: from})
	r := &ringing{rec: len(m.calls) - 1, max: rings, stop: make(chan struct{})}
	m.call = r
	m.mu.Unlock()
	m.net.log.Info("sim: incoming call", "from", from, "rings", rings, "every", every.String())
	go m.ring(r, from, every)
	return nil
}

func (m *Modem) ring(r *ringing, from string, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		m.mu.Lock()
		if m.call != r {
			m.mu.Unlock()
			return
		}
		rec := &m.calls[r.rec]
		if rec.Rings >= r.max {
			m.call = nil
			if s := m.sess; s != nil {
				s.write("\r\nNO CARRIER\r\n")
			}
			n := rec.Rings
			m.mu.Unlock()
			m.net.log.Info("sim: call not answered; the caller gave up", "from", from, "rings", n)
			return
		}
		rec.Rings++
		if s := m.sess; s != nil {
			line := "\r\nRING\r\n"
			if s.crc {
				line = "\r\n+CRING: VOICE\r\n"
			}
			if s.clip {
				switch {
				case from == "":
					line += "\r\n+CLIP: \"\",128,\"\",,\"\",1\r\n" // withheld
				case from[0] == '+':
					line += fmt.Sprintf("\r\n+CLIP: \"%s\",145,\"\",,\"\",0\r\n", from)
				default:
					line += fmt.Sprintf("\r\n+CLIP: \"%s\",129,\"\",,\"\",0\r\n", from)
				}
			}
			s.write(line)
		}
		m.mu.Unlock()
		select {
		case <-t.C:
		case <-r.stop:
			return
		}
	}
}

// Calls returns the calls rung so far.
func (m *Modem) Calls() []CallRecord {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]CallRecord(nil), m.calls...)
}

// SetRefuseCLIP makes AT+CLIP=1 answer an error, as some modems do.
func (m *Modem) SetRefuseCLIP(refuse bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.refuseCLIP = refuse
}

// callCommand runs AT+CLIP, AT+CRC and the hang-ups (ATH, AT+CHUP: OK
// also without a call, as modems answer).
func (s *session) callCommand(name, op, arg string) bool {
	m := s.m
	if name == "+CRC" {
		switch op {
		case "?":
			m.mu.Lock()
			on := s.crc
			m.mu.Unlock()
			s.info(fmt.Sprintf("+CRC: %d", map[bool]int{false: 0, true: 1}[on]))
		case "=?":
			s.info("+CRC: (0,1)")
		case "=":
			m.mu.Lock()
			s.crc = arg == "1"
			m.mu.Unlock()
		}
		return true
	}
	if op == "=?" {
		return true // AT+CHUP=?: supported
	}
	if name == "+CLIP" {
		switch op {
		case "?":
			m.mu.Lock()
			on := s.clip
			m.mu.Unlock()
			n := 0
			if on {
				n = 1
			}
			s.info(fmt.Sprintf("+CLIP: %d,1", n))
		case "=?":
			s.info("+CLIP: (0,1)")
		case "=":
			m.mu.Lock()
			refuse := m.refuseCLIP
			if !refuse {
				s.clip = arg == "1"
			}
			m.mu.Unlock()
			if refuse {
				s.cmeError(4) // operation not supported
				return false
			}
		}
		return true
	}
	m.mu.Lock()
	r := m.call
	var rec CallRecord
	if r != nil {
		m.call = nil
		m.calls[r.rec].HungUp = true
		rec = m.calls[r.rec]
		close(r.stop)
	}
	m.mu.Unlock()
	if r != nil {
		m.net.log.Info("sim: call hung up by the terminal", "command", "AT"+name, "from", rec.From, "rings", rec.Rings)
	}
	return true
}
