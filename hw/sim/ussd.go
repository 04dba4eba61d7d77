package sim

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/warthog618/sms/encoding/gsm7"
	"github.com/warthog618/sms/encoding/ucs2"
)

// USSD codes of the simulated network.
const (
	// BalanceCode answers the balance (SetBalance).
	BalanceCode = "*100#"
	// MenuCode opens a two-step menu: "1. Balance 2. Bundles", then
	// after "2", "1. Daily 2. Weekly", then "Daily bundle activated".
	MenuCode = "*123#"
)

// BalanceText is the network's answer to BalanceCode for an amount.
func BalanceText(amount float64) string {
	return fmt.Sprintf("Your balance is KES %.2f. Valid until 31/12/2026.", amount)
}

const (
	mainMenu    = "1. Balance\n2. Bundles"
	bundlesMenu = "1. Daily\n2. Weekly"
)

// SetBalance sets the credit the balance code answers.
func (m *Modem) SetBalance(amount float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.balance = amount
}

// USSDCodes returns the USSD strings the modem sent to the network, in
// order (codes and menu answers), for tests.
func (m *Modem) USSDCodes() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.ussdLog...)
}

// ussdAnswer is the network's side of a session: the state <m> and text
// for str, given the menu the modem is in.
func (m *Modem) ussdAnswer(str string) (int, string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ussdLog = append(m.ussdLog, str)
	m.ussdSeq++
	menu := m.ussdMenu
	m.ussdMenu = ""
	switch {
	case menu == "main" && str == "1", menu == "" && str == BalanceCode:
		return 0, BalanceText(m.balance)
	case menu == "main" && str == "2":
		m.ussdMenu = "bundles"
		return 1, bundlesMenu
	case menu == "bundles" && (str == "1" || str == "2"):
		return 0, map[string]string{"1": "Daily", "2": "Weekly"}[str] + " bundle activated"
	case menu != "":
		return 2, "Invalid choice"
	case str == MenuCode:
		m.ussdMenu = "main"
		return 1, mainMenu
	}
	return 4, ""
}

// cusd runs AT+CUSD: presentation on or off, cancel (2), or a USSD
// string for the network, answered by a +CUSD indication after OK (and
// after Faults.USSDDelay).
func (s *session) cusd(op, arg string) bool {
	m := s.m
	switch op {
	case "?":
		s.info(fmt.Sprintf("+CUSD: %d", s.cusdN))
		return true
	case "=?":
		s.info("+CUSD: (0-2)")
		return true
	case "":
		return true
	}
	n, str, hasStr := arg, "", false
	if i := strings.IndexByte(arg, ','); i >= 0 {
		n, str, hasStr = arg[:i], arg[i+1:], true
	}
	mode, err := strconv.Atoi(strings.TrimSpace(n))
	if err != nil || mode < 0 || mode > 2 {
		s.cmeError(50) // incorrect parameters
		return false
	}
	if mode == 2 {
		m.mu.Lock()
		m.ussdMenu = ""
		m.ussdSeq++
		m.mu.Unlock()
		return true
	}
	s.cusdN = mode
	if !hasStr {
		return true
	}
	// The string, then an optional dcs.
	str = strings.TrimSpace(str)
	if j := strings.LastIndexByte(str, '"'); strings.HasPrefix(str, `"`) && j > 0 {
		str = str[1:j]
	}
	f := m.Faults()
	switch {
	case f.USSDPacked:
		b, err := hex.DecodeString(str)
		t, err2 := gsm7.Decode(gsm7.Unpack7BitUSSD(b, 0))
		if err != nil || err2 != nil || len(b) == 0 {
			s.cmeError(100) // unknown: text where the modem wants hex
			return false
		}
		str = string(t)
	case s.cscs == "UCS2":
		b, err := hex.DecodeString(str)
		r, err2 := ucs2.Decode(b)
		if err != nil || err2 != nil {
			s.cmeError(50)
			return false
		}
		str = string(r)
	}
	if f.NoNetwork {
		s.cmeError(30) // no network service
		return false
	}
	st, text := m.ussdAnswer(str)
	line := s.cusdLine(f.USSDPacked, st, text)
	m.mu.Lock()
	seq := m.ussdSeq
	m.mu.Unlock()
	s.afterOK = func() {
		if f.USSDDelay > 0 {
			time.Sleep(f.USSDDelay)
		}
		// A session ended (AT+CUSD=2) or moved on meanwhile gets no
		// answer to this string.
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.ussdSeq == seq {
			s.write("\r\n" + line + "\r\n")
		}
	}
	return true
}

// cusdLine writes a +CUSD indication as a SIM800 does: text in the TE
// character set (with its line breaks), or UCS-2 hex when that is
// AT+CSCS="UCS2"; with packed, as a Huawei does: packed GSM 7-bit hex.
func (s *session) cusdLine(packed bool, st int, text string) string {
	if text == "" {
		return fmt.Sprintf("+CUSD: %d", st)
	}
	if packed {
		g, _ := gsm7.Encode([]byte(text))
		return fmt.Sprintf(`+CUSD: %d,"%X",15`, st, gsm7.Pack7BitUSSD(g, 0))
	}
	if s.cscs == "UCS2" {
		return fmt.Sprintf(`+CUSD: %d,"%X",72`, st, ucs2.Encode([]rune(text)))
	}
	return fmt.Sprintf(`+CUSD: %d,"%s",15`, st, strings.ReplaceAll(text, "\n", "\r\n"))
}
