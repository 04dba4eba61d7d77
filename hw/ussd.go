package hw

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/warthog618/sms/encoding/gsm7"
	"github.com/warthog618/sms/encoding/ucs2"
)

// USSD session states, the <m> of +CUSD (27.007 7.15).
const (
	USSDDone        = 0 // no further action needed
	USSDMenu        = 1 // the network waits for an answer
	USSDEnded       = 2 // terminated by the network
	USSDOtherClient = 3 // another local client answered
	USSDUnsupported = 4 // operation not supported
	USSDTimeout     = 5 // the network timed out
)

// USSDReply is one screen of a USSD session, decoded.
type USSDReply struct {
	Status int    `json:"status"`
	Text   string `json:"text"`
	DCS    int    `json:"dcs"`
}

// StatusText names Status.
func (r USSDReply) StatusText() string {
	switch r.Status {
	case USSDDone:
		return "done"
	case USSDMenu:
		return "waiting for an answer"
	case USSDEnded:
		return "ended by the network"
	case USSDOtherClient:
		return "answered by another client"
	case USSDUnsupported:
		return "not supported by the network"
	case USSDTimeout:
		return "timed out in the network"
	}
	return "unknown state " + strconv.Itoa(r.Status)
}

// Balance is a modem's SIM credit as its last balance check read it,
// shown in its Status. The caller (the SMS connector) owns the policy:
// Low and Paused say what it made of the reading.
type Balance struct {
	Amount   *float64  `json:"amount,omitempty"`
	Currency string    `json:"currency,omitempty"`
	Text     string    `json:"text,omitempty"`
	At       time.Time `json:"at,omitzero"`
	Low      bool      `json:"low,omitempty"`
	// Paused says why sends are held back from the modem ("" when not).
	Paused string `json:"paused,omitempty"`
	// Error is why the last check failed ("" when it worked).
	Error string `json:"error,omitempty"`
}

// USSDer is a modem that runs USSD sessions.
type USSDer interface {
	// USSD dials code and answers each menu the network sends with the
	// next of answers. It returns the screens seen, also with an error
	// (the screens before it). A session still open when the answers run
	// out is ended (AT+CUSD=2), so it does not block the next one.
	USSD(ctx context.Context, code string, answers []string) ([]USSDReply, error)
	// SetBalance shows b in the modem's status (nil: none).
	SetBalance(b *Balance)
}

// ErrUSSD marks a session the network refused or ended with no answer.
var ErrUSSD = errors.New("USSD")

// ussdConn is the USSD side of one connection.
type ussdConn struct {
	once    sync.Once
	replies chan USSDReply
	// active: a session waits for screens; others are the network's own
	// messages, logged.
	active atomic.Bool
	// packed: the modem wants the code as GSM 7-bit packed hex (Huawei),
	// learned when it refused it as text.
	packed bool
}

// defaultUSSDTimeout is how long each screen is waited for by default:
// networks answer in a few seconds and give up on a session after about
// 30.
const defaultUSSDTimeout = 30 * time.Second

// USSD implements USSDer. Sessions on one modem run one at a time; the
// AT commands go through the modem's one AT engine between its SMS
// commands, and SMS go on while the network prepares its answer.
func (m *ATModem) USSD(ctx context.Context, code string, answers []string) ([]USSDReply, error) {
	if err := checkUSSDString(code); err != nil {
		return nil, err
	}
	for _, a := range answers {
		if err := checkUSSDString(a); err != nil {
			return nil, err
		}
	}
	select {
	case m.ussdMu <- struct{}{}:
		defer func() { <-m.ussdMu }()
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for another USSD session on %s: %w", m.cfg.ID, ctx.Err())
	}
	c := m.current()
	if c == nil {
		return nil, fmt.Errorf("USSD on %s: %w", m.cfg.ID, ErrNotReady)
	}
	u, err := m.ussdSetup(c)
	if err != nil {
		return nil, err
	}
	// A screen left from a session that timed out here is not this one's.
	for len(u.replies) > 0 {
		<-u.replies
	}
	u.active.Store(true)
	defer u.active.Store(false)
	timeout := m.cfg.USSDTimeout
	if timeout == 0 {
		timeout = defaultUSSDTimeout
	}
	var out []USSDReply
	send := code
	for step := 0; ; step++ {
		if err := m.ussdSend(c, u, send); err != nil {
			return out, err
		}
		var r USSDReply
		t := time.NewTimer(timeout)
		select {
		case r = <-u.replies:
			t.Stop()
		case <-t.C:
			m.ussdCancel(c)
			return out, fmt.Errorf("%w %s on %s: no answer from the network in %s", ErrUSSD, code, m.cfg.ID, timeout)
		case <-ctx.Done():
			t.Stop()
			m.ussdCancel(c)
			return out, ctx.Err()
		case <-c.at.Closed():
			t.Stop()
			return out, fmt.Errorf("USSD %s on %s: port closed: %w", code, m.cfg.ID, ErrNotReady)
		}
		out = append(out, r)
		switch r.Status {
		case USSDUnsupported, USSDTimeout, USSDOtherClient:
			return out, fmt.Errorf("%w %s on %s: %s", ErrUSSD, code, m.cfg.ID, r.StatusText())
		case USSDMenu:
			if step < len(answers) {
				send = answers[step]
				continue
			}
			m.ussdCancel(c)
			return out, nil
		}
		if step < len(answers) {
			return out, fmt.Errorf("%w %s on %s: the session ended (%s) before answer %d of %d (%q)", ErrUSSD, code, m.cfg.ID, r.StatusText(), step+1, len(answers), answers[step])
		}
		return out, nil
	}
}

// checkUSSDString refuses what cannot be a USSD string: it goes inside
// the quotes of an AT command.
func checkUSSDString(s string) error {
	switch {
	case s == "":
		return errors.New("USSD: empty code or answer")
	case len(s) > 160:
		return fmt.Errorf("USSD: %q is longer than 160 characters", s)
	case strings.ContainsAny(s, "\"\r\n\x1a\x1b"):
		return fmt.Errorf("USSD: %q holds a quote or a control character", s)
	}
	for _, r := range s {
		if r > 0x7e || r < 0x20 {
			return fmt.Errorf("USSD: %q: only plain ASCII characters can be sent", s)
		}
	}
	return nil
}

// ussdSetup readies c for USSD once: the +CUSD indication and a plain
// character set (IRA, else GSM: answers in text, or hex the decoder
// recognises).
func (m *ATModem) ussdSetup(c *conn) (*ussdConn, error) {
	u := c.ussd
	var err error
	u.once.Do(func() {
		err = c.at.AddIndication("+CUSD:", func(l []string) { m.onCUSD(c, l[0]) })
		if err != nil {
			return
		}
		if _, e := m.command(c, `+CSCS="IRA"`, m.cfg.CommandTimeout); e != nil {
			if errors.Is(e, ErrNotReady) {
				err = e
				return
			}
			m.command(c, `+CSCS="GSM"`, m.cfg.CommandTimeout)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("USSD on %s: %w", m.cfg.ID, err)
	}
	return u, nil
}

// ussdSend writes one USSD string, as text, or as packed GSM 7-bit hex
// when the modem refused text (Huawei's modems want it so).
func (m *ATModem) ussdSend(c *conn, u *ussdConn, s string) error {
	cmd := func(packed bool) string {
		if packed {
			g, _ := gsm7.Encode([]byte(s))
			return fmt.Sprintf(`+CUSD=1,"%X",15`, gsm7.Pack7BitUSSD(g, 0))
		}
		return fmt.Sprintf(`+CUSD=1,"%s",15`, s)
	}
	_, err := m.command(c, cmd(u.packed), m.cfg.CommandTimeout)
	var cme *CMEError
	if err != nil && !u.packed && !errors.Is(err, ErrNotReady) && (errors.As(err, &cme) || strings.HasSuffix(err.Error(), "ERROR")) {
		if _, err2 := m.command(c, cmd(true), m.cfg.CommandTimeout); err2 == nil {
			m.log.Info("modem takes USSD strings as packed GSM 7-bit hex")
			u.packed = true
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("USSD on %s: %w", m.cfg.ID, err)
	}
	return nil
}

// ussdCancel ends an open session; a modem that has none may refuse.
func (m *ATModem) ussdCancel(c *conn) {
	if _, err := m.command(c, "+CUSD=2", m.cfg.CommandTimeout); err != nil {
		m.log.Debug("ending the USSD session", "err", err)
	}
}

// onCUSD runs on the AT engine's indication goroutine.
func (m *ATModem) onCUSD(c *conn, line string) {
	r, err := parseCUSD(line)
	if err != nil {
		m.log.Warn("unparsable USSD answer", "line", line, "err", err)
		return
	}
	if !c.ussd.active.Load() {
		m.log.Info("USSD message from the network, no session waiting for it", "status", r.Status, "text", r.Text)
		return
	}
	select {
	case c.ussd.replies <- r:
	default:
		m.log.Warn("USSD screens come faster than they are read; dropped one", "status", r.Status, "text", r.Text)
	}
}

// parseCUSD reads `+CUSD: <m>[,"<str>"[,<dcs>]]`.
func parseCUSD(line string) (USSDReply, error) {
	v := strings.TrimSpace(strings.TrimPrefix(line, "+CUSD:"))
	head, rest, _ := strings.Cut(v, ",")
	st, err := strconv.Atoi(strings.TrimSpace(head))
	if err != nil {
		return USSDReply{}, fmt.Errorf("no state in %q", line)
	}
	r := USSDReply{Status: st, DCS: 15}
	rest = strings.TrimSpace(rest)
	if rest == "" {
		return r, nil
	}
	str := rest
	if strings.HasPrefix(rest, `"`) {
		end := strings.LastIndex(rest, `"`)
		if end <= 0 {
			return r, fmt.Errorf("unterminated string in %q", line)
		}
		str = rest[1:end]
		if d := strings.TrimSpace(strings.TrimPrefix(rest[end+1:], ",")); d != "" {
			if r.DCS, err = strconv.Atoi(d); err != nil {
				return r, fmt.Errorf("bad dcs in %q", line)
			}
		}
	}
	r.Text = decodeUSSD(strings.ReplaceAll(str, string(lineMark), "\n"), r.DCS)
	return r, nil
}

// Alphabets of a USSD data coding scheme (23.038 5).
const (
	alphaGSM7 = iota
	alpha8Bit
	alphaUCS2
)

func ussdAlphabet(dcs int) int {
	switch {
	case dcs&0xf0 == 0x00, dcs&0xf0 == 0x20, dcs&0xf0 == 0x30, dcs == 0x10:
		return alphaGSM7
	case dcs == 0x11:
		return alphaUCS2
	case dcs&0xc0 == 0x40, dcs&0xf0 == 0x90:
		return []int{alphaGSM7, alpha8Bit, alphaUCS2, alphaGSM7}[(dcs>>2)&3]
	case dcs&0xf0 == 0xf0:
		if dcs&0x04 != 0 {
			return alpha8Bit
		}
	}
	return alphaGSM7
}

// decodeUSSD turns the string of a +CUSD into text. Modems differ: most
// give GSM 7-bit text as text in the TE character set and UCS-2 as hex;
// some (Huawei) give GSM 7-bit as packed septets in hex. Hex is taken as
// such only when it decodes to sensible text.
func decodeUSSD(s string, dcs int) string {
	if !isHex(s) {
		return s
	}
	b, _ := hex.DecodeString(s)
	switch ussdAlphabet(dcs) {
	case alphaUCS2:
		if len(b)%2 == 0 {
			if r, err := ucs2.Decode(b); err == nil && sensible(string(r)) {
				return string(r)
			}
		}
	case alpha8Bit:
		if sensible(string(b)) {
			return string(b)
		}
	default:
		if t, err := gsm7.Decode(gsm7.Unpack7BitUSSD(b, 0), gsm7.Strict); err == nil && sensible(string(t)) && !isHex(string(t)) {
			return string(t)
		}
		// UCS-2 hex under a GSM 7-bit dcs: a modem left in
		// AT+CSCS="UCS2". Only alphabets (below U+0800) are taken: digits
		// misread as UCS-2 are CJK.
		if len(b)%2 == 0 {
			if r, err := ucs2.Decode(b); err == nil && sensible(string(r)) && slices.Max(r) < 0x800 {
				return string(r)
			}
		}
	}
	return s
}

func isHex(s string) bool {
	if len(s) < 4 || len(s)%2 != 0 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// sensible says t reads as an operator's message: printable letters of
// the Latin alphabets and punctuation, not the Greek capitals and
// control codes that hex misread as septets gives.
func sensible(t string) bool {
	if t == "" {
		return false
	}
	for _, r := range t {
		switch {
		case r == '\n' || r == '\r':
		case r < 0x20, r == 0x7f, r == unicode.ReplacementChar:
			return false
		case r >= 0x370 && r <= 0x3ff && r != 'µ':
			return false // Greek: GSM 0x10-0x1a
		case !unicode.IsPrint(r):
			return false
		}
	}
	return true
}

// lineMark stands for a line break inside the quoted string of a +CUSD:
// the AT engine reads lines, and a menu is several.
const lineMark = '\x1f'

// cusdLines joins the lines of a +CUSD whose quoted string spans several
// (menus sent as text), so the AT engine sees one line.
type cusdLines struct {
	io.ReadWriter
	head   []byte // the start of the line read so far
	cusd   bool   // the line is a +CUSD
	quoted int    // bytes inside its quotes; -1 outside
}

func newCUSDLines(rw io.ReadWriter) *cusdLines { return &cusdLines{ReadWriter: rw, quoted: -1} }

// maxQuoted bounds a joined string: a quote never closed (garbage) must
// not swallow the modem's later answers.
const maxQuoted = 2048

func (j *cusdLines) Read(p []byte) (int, error) {
	for {
		n, err := j.ReadWriter.Read(p)
		out := p[:0]
		for _, b := range p[:n] {
			inside := j.cusd && j.quoted >= 0
			switch {
			case inside && (b == '\r' || b == '\n'):
				if b == '\n' {
					out = append(out, lineMark)
				}
				continue
			case b == '\r' || b == '\n':
				j.head, j.cusd, j.quoted = j.head[:0], false, -1
			default:
				if len(j.head) < len("+CUSD:") {
					j.head = append(j.head, b)
					j.cusd = string(j.head) == "+CUSD:"
				}
				if j.cusd && b == '"' {
					if j.quoted < 0 {
						j.quoted = 0
					} else {
						j.quoted = -1
					}
				} else if inside {
					if j.quoted++; j.quoted > maxQuoted {
						j.cusd, j.quoted = false, -1
					}
				}
			}
			out = append(out, b)
		}
		if len(out) > 0 || n == 0 || err != nil {
			return len(out), err
		}
	}
}

// SetBalance implements USSDer.
func (m *ATModem) SetBalance(b *Balance) {
	m.setStatus(func(s *Status) { s.Balance = b })
}

var _ USSDer = (*ATModem)(nil)
