package pdu

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/warthog618/sms/encoding/gsm7"
	"github.com/warthog618/sms/encoding/gsm7/charset"
	"github.com/warthog618/sms/encoding/tpdu"
	"github.com/warthog618/sms/encoding/ucs2"
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
	// Validity is the relative validity period (0: the SMSC's default),
	// 5 minutes to 441 days; the SMSC gives up after it.
	Validity time.Duration
	// Ports addresses 8-bit data to an application (16-bit ports).
	Ports *Ports
	// Languages are the national language tables (Language) that may be
	// used for this destination.
	Languages []int
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

// National language identifiers of 3GPP TS 23.038 section 6.2.1.2.4,
// by the names the configuration uses.
var languages = map[string]int{
	"turkish": charset.Turkish, "spanish": charset.Spanish, "portuguese": charset.Portuguese,
	"bengali": charset.Bengali, "gujarati": charset.Gujaranti, "hindi": charset.Hindi,
	"kannada": charset.Kannada, "malayalam": charset.Malayalam, "oriya": charset.Oriya,
	"punjabi": charset.Punjabi, "tamil": charset.Tamil, "telugu": charset.Telugu, "urdu": charset.Urdu,
}

// Language returns the national language identifier called name
// ("turkish", "hindi", …).
func Language(name string) (int, error) {
	if id, ok := languages[strings.ToLower(strings.TrimSpace(name))]; ok {
		return id, nil
	}
	names := make([]string, 0, len(languages))
	for n := range languages {
		names = append(names, n)
	}
	sort.Strings(names)
	return 0, fmt.Errorf("unknown national language %q (known: %s)", name, strings.Join(names, ", "))
}

// Information element ids of the national language tables.
const (
	ieSingleShift  = 0x24
	ieLockingShift = 0x25
)

// textEncoding is one way to write a text: its user data (septets or
// UCS-2 octets), the header elements the way needs, and its alphabet.
type textEncoding struct {
	ud    []byte
	udh   tpdu.UserDataHeader
	alpha tpdu.Alphabet
}

// textEncodings lists the ways text can be written, in order of
// preference: the default GSM alphabet, then for each allowed national
// language its single shift table, its locking shift table, and both;
// UCS-2 only when none of those can.
func textEncodings(text string, langs []int) []textEncoding {
	msg := []byte(text)
	var out []textEncoding
	if ud, err := gsm7.Encode(msg); err == nil {
		out = append(out, textEncoding{ud, nil, tpdu.Alpha7Bit})
	}
	for _, nli := range langs {
		shift := tpdu.InformationElement{ID: ieSingleShift, Data: []byte{byte(nli)}}
		lock := tpdu.InformationElement{ID: ieLockingShift, Data: []byte{byte(nli)}}
		if ud, err := gsm7.Encode(msg, gsm7.WithExtCharset(nli)); err == nil {
			out = append(out, textEncoding{ud, tpdu.UserDataHeader{shift}, tpdu.Alpha7Bit})
		}
		if ud, err := gsm7.Encode(msg, gsm7.WithCharset(nli)); err == nil {
			out = append(out, textEncoding{ud, tpdu.UserDataHeader{lock}, tpdu.Alpha7Bit})
		}
		if ud, err := gsm7.Encode(msg, gsm7.WithCharset(nli), gsm7.WithExtCharset(nli)); err == nil {
			out = append(out, textEncoding{ud, tpdu.UserDataHeader{lock, shift}, tpdu.Alpha7Bit})
		}
	}
	if len(out) > 0 {
		// Two septets at most a character (14 bits) against UCS-2's 16:
		// any GSM encoding needs no more parts.
		return out
	}
	return append(out, textEncoding{ucs2.Encode([]rune(text)), nil, tpdu.AlphaUCS2})
}

// Encode segments the message into as few parts as possible: of the
// alphabets that can write the text (GSM 7-bit, the national language
// tables allowed for the destination, UCS-2) it takes the one that needs
// the fewest parts, the first in that order on a tie. It never splits an
// escape sequence or a surrogate pair.
func (e *Encoder) Encode(s Outgoing) ([]Part, error) {
	if err := ValidateNumber(s.To); err != nil {
		return nil, err
	}
	if s.Data == nil && s.Text == "" {
		return nil, ErrEmpty
	}
	if s.Data != nil && len(s.Data) == 0 {
		return nil, ErrEmpty
	}
	if s.Data == nil && !utf8.ValidString(s.Text) {
		return nil, fmt.Errorf("text is not valid UTF-8")
	}
	if s.Ports != nil && s.Data == nil {
		return nil, fmt.Errorf("application ports go with 8-bit data, not text")
	}
	tmpl, err := tpdu.NewSubmit(tpdu.WithDA(destination(s.To)))
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	if s.Report {
		tmpl.FirstOctet |= tpdu.FoSRR
	}
	if s.Validity != 0 {
		if s.Validity < 5*time.Minute || s.Validity > 441*24*time.Hour {
			return nil, fmt.Errorf("validity period %v: must be between 5m and 441 days", s.Validity)
		}
		var vp tpdu.ValidityPeriod
		vp.SetRelative(s.Validity)
		tmpl.SetVP(vp)
	}
	var class byte
	if s.Flash {
		class = 0x10 // DCS general group, class 0
	}
	var enc textEncoding
	if s.Data != nil {
		enc = textEncoding{ud: s.Data, alpha: tpdu.Alpha8Bit}
		if s.Ports != nil {
			p := s.Ports
			if p.Dst < 0 || p.Dst > 0xFFFF || p.Src < 0 || p.Src > 0xFFFF {
				return nil, fmt.Errorf("application ports %d/%d: must be 0–65535", p.Dst, p.Src)
			}
			enc.udh = tpdu.UserDataHeader{{ID: 0x05, Data: []byte{byte(p.Dst >> 8), byte(p.Dst), byte(p.Src >> 8), byte(p.Src)}}}
		}
	} else {
		cands := textEncodings(s.Text, s.Languages)
		enc = cands[0]
		if len(cands) > 1 {
			best := -1
			for _, c := range cands {
				n := len(segment(*tmpl, c, class, nil))
				if best < 0 || n < best {
					best, enc = n, c
				}
			}
		}
	}
	refs := &refCounter{src: e.Refs}
	tpdus := segment(*tmpl, enc, class, refs)
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

// segment splits one encoding into SMS-SUBMITs on the template. A nil
// refs only counts (no reference is taken).
func segment(tmpl tpdu.TPDU, c textEncoding, class byte, refs tpdu.Counter) []tpdu.TPDU {
	dcs := class
	switch c.alpha {
	case tpdu.Alpha8Bit:
		dcs |= 0x04
	case tpdu.AlphaUCS2:
		dcs |= 0x08
	}
	tmpl.SetDCS(dcs)
	if len(c.udh) > 0 {
		tmpl.SetUDH(append(tpdu.UserDataHeader(nil), c.udh...))
	}
	if refs == nil {
		refs = fixedRef(0)
	}
	return tmpl.Segment(c.ud, tpdu.WithConcatRef(refs))
}

type fixedRef int

func (f fixedRef) Count() int { return int(f) }

// destination is the TP-DA of a send to number: international (type of
// number 001) when it starts with '+', else unknown (000), as Gammu and
// the modems' own text mode send it: the network reads a national number
// (0712…) or a short code (12345) as such. warthog618's FromNumber marks
// every number international, which sends 0712… to a country "07…".
func destination(number string) tpdu.Address {
	if strings.HasPrefix(number, "+") {
		return tpdu.NewAddress(tpdu.FromNumber(number))
	}
	a := tpdu.NewAddress()
	a.SetTypeOfNumber(tpdu.TonUnknown)
	a.SetNumberingPlan(tpdu.NpISDN)
	a.Addr = number
	return a
}
