package sim

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/warthog618/sms"
)

// FillNumber is the peer of the messages Fill leaves on a SIM.
const FillNumber = "+15555550199"

var fillSeq atomic.Int64

// slotsUsable is the SIM's capacity. Called with m.mu held.
func (m *Modem) slotsUsable() int {
	if m.capacity > 0 {
		return m.capacity
	}
	return Slots
}

// SetCapacity sets how many slots the SIM has (1 to Slots). Messages
// already beyond it stay; new ones are kept by the network until there
// is room, as on a full SIM.
func (m *Modem) SetCapacity(n int) error {
	if n < 1 || n > Slots {
		return fmt.Errorf("capacity %d: want 1 to %d", n, Slots)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.capacity = n
	m.retryPending()
	return nil
}

// Capacity is how many slots the SIM has.
func (m *Modem) Capacity() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.slotsUsable()
}

// Pending is how many messages the network keeps for the modem because
// its SIM is full.
func (m *Modem) Pending() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.pending)
}

// save stores a message as AT+CMGW or another program would; 0 when the
// SIM is full. Called with m.mu held.
func (m *Modem) save(stat int, p []byte) int {
	idx := m.freeSlot()
	if idx != 0 {
		m.slots[idx] = &slot{stat: stat, pdu: p, isReport: false}
	}
	return idx
}

// Fill leaves n messages on the SIM as another program would: kind
// "read" or "unread" SMS-DELIVERs from FillNumber, "sent" or "unsent"
// SMS-SUBMITs to it. It returns how many fit.
func (m *Modem) Fill(n int, kind string) (int, error) {
	stat, ok := map[string]int{"unread": recUnread, "read": recRead, "unsent": stoUnsent, "sent": stoSent}[kind]
	if !ok {
		return 0, fmt.Errorf("fill %q: want unread, read, unsent or sent", kind)
	}
	stored := 0
	for range n {
		text := fmt.Sprintf("left on the SIM by another program (%d)", fillSeq.Add(1))
		opts := []sms.EncoderOption{sms.To(FillNumber)}
		if stat <= recRead {
			opts = []sms.EncoderOption{sms.AsDeliver, sms.From(FillNumber)}
		}
		tps, err := sms.NewEncoder(opts...).Encode([]byte(text))
		if err != nil {
			return stored, err
		}
		if stat <= recRead {
			tps[0].SCTS.Time = m.net.Now().Truncate(time.Second)
		}
		b, err := tps[0].MarshalBinary()
		if err != nil {
			return stored, err
		}
		m.mu.Lock()
		idx := m.save(stat, withSMSC(b))
		m.mu.Unlock()
		if idx == 0 {
			break
		}
		stored++
	}
	return stored, nil
}

// cmgw stores a PDU (AT+CMGW=<length>[,<stat>], the PDU after the
// prompt): +CMGW: <index>, or +CMS ERROR: 322 when the SIM is full.
func (s *session) cmgw(arg string, r *bufio.Reader) bool {
	f := strings.Split(arg, ",")
	length, err := strconv.Atoi(strings.TrimSpace(f[0]))
	stat := stoUnsent
	if len(f) > 1 {
		stat, err = strconv.Atoi(strings.TrimSpace(f[1]))
	}
	if err != nil || length < 7 || length > 164 || stat < recUnread || stat > stoSent {
		s.cmsError(304)
		return false
	}
	s.write("\r\n> ")
	var buf []byte
	for {
		c, err := r.ReadByte()
		if err != nil {
			return false
		}
		if c == 0x1b {
			s.ok()
			return false
		}
		if c == 0x1a {
			break
		}
		if c != '\r' && c != '\n' {
			buf = append(buf, c)
		}
	}
	if s.echo {
		s.write(string(buf) + "\x1a")
	}
	raw, err := hex.DecodeString(string(buf))
	if err != nil || len(raw) < 1 || int(raw[0])+1+length != len(raw) {
		s.cmsError(304)
		return false
	}
	s.m.mu.Lock()
	idx := s.m.save(stat, raw)
	s.m.mu.Unlock()
	if idx == 0 {
		s.m.net.log.Info("sim: message store full; write refused", "cms_error", 322)
		s.cmsError(322) // memory full
		return false
	}
	s.info(fmt.Sprintf("+CMGW: %d", idx))
	return true
}
