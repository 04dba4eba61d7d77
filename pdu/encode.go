package pdu

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/warthog618/sms"
	"github.com/warthog618/sms/encoding/tpdu"
)

// RefSource hands out concatenation references. Outpost's is backed by the
// store so references keep increasing across restarts.
type RefSource interface {
	NextConcatRef() (int, error)
}

// Outgoing describes one SMS to encode.
type Outgoing struct {
	To     string
	Text   string
	Data   []byte // 8-bit payload instead of Text
	Report bool   // request a status report for every part
	Flash  bool   // class 0
}

// Part is one encoded SMS-SUBMIT.
type Part struct {
	TPDU  []byte
	Seq   int
	Total int
}

// Hex is the part as AT+CMGS wants it in PDU mode: an empty SMSC address
// (use the SIM's) followed by the TPDU. The length argument of AT+CMGS is
// len(p.TPDU).
func (p Part) Hex() string {
	return "00" + strings.ToUpper(fmt.Sprintf("%x", p.TPDU))
}

// Errors for bad requests.
var (
	ErrBadNumber = errors.New("bad phone number")
	ErrEmpty     = errors.New("empty message")
	ErrTooLong   = errors.New("message too long")
)

// MaxParts bounds a message's length (the concatenation element allows 255).
const MaxParts = 255

// ValidateNumber checks a destination: an international number with '+',
// or a national number or short code, 3 to 20 digits.
func ValidateNumber(s string) error {
	if s == "" {
		return fmt.Errorf("%w: empty", ErrBadNumber)
	}
	d := strings.TrimPrefix(s, "+")
	if len(d) < 3 || len(d) > 20 {
		return fmt.Errorf("%w: %q must have 3 to 20 digits", ErrBadNumber, s)
	}
	for _, r := range d {
		if r < '0' || r > '9' {
			return fmt.Errorf("%w: %q may only contain digits after an optional '+' (found %q)", ErrBadNumber, s, r)
		}
	}
	return nil
}

// Encoder encodes SMS-SUBMIT PDUs. One long-lived Encoder serves the
// daemon; it is safe for concurrent use if its RefSource is.
type Encoder struct {
	Refs RefSource
}

type refCounter struct {
	src RefSource
	err error
}

func (c *refCounter) Count() int {
	if c.src == nil {
		return 1
	}
	n, err := c.src.NextConcatRef()
	if err != nil {
		c.err = err
	}
	return n
}

// Encode segments the message into as few parts as its alphabet allows
// (GSM 7-bit when every character has a septet, else UCS-2), never
// splitting an escape sequence or a surrogate pair.
func (e *Encoder) Encode(s Outgoing) ([]Part, error) {
	if err := ValidateNumber(s.To); err != nil {
		return nil, err
	}
	if s.Data == nil && s.Text == "" {
		return nil, ErrEmpty
	}
	if s.Data == nil && !utf8.ValidString(s.Text) {
		return nil, fmt.Errorf("text is not valid UTF-8")
	}
	opts := []sms.EncoderOption{sms.To(s.To)}
	tmpl := tpdu.TPDU{}
	if s.Report {
		tmpl.FirstOctet |= tpdu.FoSRR
	}
	if s.Flash {
		dcs, _ := tpdu.DCS(0).WithClass(tpdu.MClass0)
		tmpl.DCS = dcs
	}
	msg := []byte(s.Text)
	if s.Data != nil {
		dcs, _ := tmpl.DCS.WithAlphabet(tpdu.Alpha8Bit)
		tmpl.DCS = dcs
		msg = s.Data
		if len(msg) == 0 {
			return nil, ErrEmpty
		}
	}
	refs := &refCounter{src: e.Refs}
	enc := sms.NewEncoder(append([]sms.EncoderOption{sms.WithTemplate(tmpl), sms.AsSubmit}, opts...)...)
	enc.ConcatRef = refs
	tpdus, err := enc.Encode(msg)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	if refs.err != nil {
		return nil, fmt.Errorf("concatenation reference: %w", refs.err)
	}
	if len(tpdus) > MaxParts {
		return nil, fmt.Errorf("%w: %d parts, at most %d", ErrTooLong, len(tpdus), MaxParts)
	}
	parts := make([]Part, len(tpdus))
	for i := range tpdus {
		tpdus[i].MR = 0 // the modem assigns TP-MR
		b, err := tpdus[i].MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("marshal part %d/%d: %w", i+1, len(tpdus), err)
		}
		parts[i] = Part{TPDU: b, Seq: i + 1, Total: len(tpdus)}
	}
	return parts, nil
}
