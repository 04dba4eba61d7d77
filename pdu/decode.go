// Package pdu owns the SMS TPDU codec of Outpost, built on
// github.com/warthog618/sms: decoding SMS-DELIVER, SMS-SUBMIT (as read back
// from a SIM) and SMS-STATUS-REPORT in the form a modem prints them (with
// the SMSC prefix), encoding SMS-SUBMIT with segmentation, the logic of
// reassembly (keys, completeness, joining) and the meaning of status
// reports. It keeps no state: the concatenation reference counter and the
// parts of half-received messages live in the store, reached through small
// interfaces. It imports nothing of Outpost's.
package pdu

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/warthog618/sms/encoding/gsm7"
	"github.com/warthog618/sms/encoding/gsm7/charset"
	"github.com/warthog618/sms/encoding/pdumode"
	"github.com/warthog618/sms/encoding/tpdu"
)

// Message types.
const (
	Deliver      = "deliver"
	Submit       = "submit"
	StatusReport = "status_report"
)

// Codings.
const (
	GSM7  = "gsm7"
	UCS2  = "ucs2"
	Bit8  = "8bit"
	Other = "unknown"
)

// Message is one decoded PDU.
type Message struct {
	Type   string `json:"type"`
	SMSC   string `json:"smsc"`
	Number string `json:"number"` // originator, recipient or report recipient
	Coding string `json:"coding"`
	Class  int    `json:"class"` // -1 when none
	// Text is the decoded user data for gsm7 and ucs2; Data the raw octets
	// for 8-bit.
	Text   string `json:"text,omitempty"`
	Data   []byte `json:"-"`
	IsText bool   `json:"-"`

	UDH *UDH `json:"udh"`

	Timestamp        time.Time `json:"timestamp,omitzero"` // TP-SCTS
	MessageReference int       `json:"message_reference"`
	Status           int       `json:"status"`                  // TP-ST
	DischargeTime    time.Time `json:"discharge_time,omitzero"` // TP-DT
	ReplyPath        bool      `json:"reply_path"`
	RejectDuplicates bool      `json:"reject_duplicates"`
	StatusRequested  bool      `json:"status_report_request"`
	// ReplaceMessage is the replace type 1–7 of TP-PID 0x41–0x47 (0: none).
	ReplaceMessage int `json:"replace_message"`
	// Validity is a SUBMIT's validity period: a duration ("24h0m0s") when
	// relative or enhanced, an RFC 3339 time when absolute, "" when absent.
	Validity string   `json:"validity"`
	Quirks   []string `json:"quirks"`

	// TPDU is the PDU without the SMSC prefix.
	TPDU []byte `json:"-"`
	// ud and udh keep what joining parts needs.
	alpha tpdu.Alphabet
	ud    tpdu.UserData
	udh   tpdu.UserDataHeader
	// emptyUDH: TP-UDHI set with a header length octet of 0.
	emptyUDH bool
}

// MarshalJSON writes the decode contract of "outpost decode pdu --json":
// text for gsm7/ucs2, data_hex (uppercase, without the header) for 8-bit,
// quirks always a list.
func (m *Message) MarshalJSON() ([]byte, error) {
	type plain Message
	out := struct {
		*plain
		Text    *string  `json:"text,omitempty"`
		DataHex *string  `json:"data_hex,omitempty"`
		Quirks  []string `json:"quirks"`
	}{plain: (*plain)(m), Quirks: m.Quirks}
	if out.Quirks == nil {
		out.Quirks = []string{}
	}
	switch {
	case m.IsText:
		out.Text = &m.Text
	case m.Type != StatusReport:
		h := strings.ToUpper(hex.EncodeToString(m.Data))
		out.DataHex = &h
	}
	return json.Marshal(out)
}

// UDH is the user data header.
type UDH struct {
	Hex      string    `json:"hex"` // including its length octet
	Concat   *Concat   `json:"concat"`
	Ports    *Ports    `json:"ports"`
	Elements []Element `json:"elements,omitempty"`
}

// Concat is a concatenation element.
type Concat struct {
	Ref     int `json:"ref"`
	RefBits int `json:"ref_bits"`
	Total   int `json:"total"`
	Seq     int `json:"seq"`
}

// Ports is an application port addressing element.
type Ports struct {
	Dst  int `json:"dst"`
	Src  int `json:"src"`
	Bits int `json:"bits"`
}

// Element is any user data header element.
type Element struct {
	ID   int    `json:"id"`
	Data string `json:"data_hex"`
}

// ErrDecode wraps every decoding failure.
var ErrDecode = errors.New("cannot decode PDU")

// DecodeHex decodes a PDU as a modem prints it: hex, SMSC address first.
func DecodeHex(s string) (*Message, error) {
	s = strings.TrimSpace(s)
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: not hex: %v", ErrDecode, err)
	}
	return Decode(b)
}

// Decode decodes a PDU with its SMSC prefix. The message type comes from
// TP-MTI as a modem stores messages: 0 deliver, 1 submit, 2 status report.
func Decode(b []byte) (*Message, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrDecode)
	}
	var p pdumode.PDU
	if err := p.UnmarshalBinary(b); err != nil {
		return nil, fmt.Errorf("%w: SMSC address: %v", ErrDecode, err)
	}
	m, err := DecodeTPDU(p.TPDU)
	if err != nil {
		return nil, err
	}
	if p.SMSC.Addr != "" {
		m.SMSC = p.SMSC.Number()
	}
	return m, nil
}

// DecodeTPDU decodes a TPDU without SMSC prefix.
func DecodeTPDU(b []byte) (*Message, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty TPDU", ErrDecode)
	}
	t := tpdu.TPDU{Direction: tpdu.MT}
	m := &Message{Class: -1, TPDU: append([]byte(nil), b...)}
	switch b[0] & 0x03 {
	case 0:
		m.Type = Deliver
	case 1:
		m.Type = Submit
		t.Direction = tpdu.MO
	case 2:
		m.Type = StatusReport
	default:
		return nil, fmt.Errorf("%w: reserved message type indicator 3", ErrDecode)
	}
	r := repair(b, m.Type)
	m.Quirks = append(m.Quirks, r.quirks...)
	if err := t.UnmarshalBinary(r.b); err != nil {
		// A status report's optional part (TP-PI and what it announces)
		// is not used: one that cannot be read is dropped.
		if m.Type != StatusReport || r.st <= 0 || r.st+1 >= len(r.b) {
			return nil, fmt.Errorf("%w: %s: %v", ErrDecode, m.Type, err)
		}
		t = tpdu.TPDU{Direction: tpdu.MT} // nothing kept from the failed attempt (its TP-PID)
		if t.UnmarshalBinary(r.b[:r.st+1]) != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrDecode, m.Type, err)
		}
		m.Quirks = append(m.Quirks, fmt.Sprintf("parameters after TP-ST unreadable (%X), ignored", r.b[r.st+1:]))
	}
	if r.badSCTS {
		t.SCTS.Time = time.Time{}
	}
	if r.badDT {
		t.DT.Time = time.Time{}
	}
	m.emptyUDH = r.emptyUDH
	fo := t.FirstOctet
	m.ReplyPath = fo.RP()
	if t.PID >= 0x41 && t.PID <= 0x47 {
		m.ReplaceMessage = int(t.PID - 0x40)
	}
	switch m.Type {
	case Deliver:
		m.Number = addressNumber(t.OA)
		m.Timestamp = t.SCTS.Time
		m.StatusRequested = fo.SRI()
	case Submit:
		m.Number = addressNumber(t.DA)
		m.MessageReference = int(t.MR)
		m.RejectDuplicates = fo.RD()
		m.StatusRequested = fo.SRR()
		switch t.VP.Format {
		case tpdu.VpfRelative, tpdu.VpfEnhanced:
			m.Validity = t.VP.Duration.String()
		case tpdu.VpfAbsolute:
			if !r.badVP {
				m.Validity = t.VP.Time.Format(time.RFC3339)
			}
		}
	case StatusReport:
		m.Number = addressNumber(t.RA)
		m.MessageReference = int(t.MR)
		m.Timestamp = t.SCTS.Time
		m.DischargeTime = t.DT.Time
		m.Status = int(t.ST)
		return m, nil
	}
	if err := m.decodeUserData(&t); err != nil {
		return nil, err
	}
	return m, nil
}

// repaired is what repair did to a TPDU before warthog618/sms reads it.
type repaired struct {
	b      []byte // the TPDU to read: a repaired copy, or the original
	quirks []string
	// badSCTS, badDT, badVP: the time stamp had a digit that is not BCD
	// and was replaced by a placeholder; the time is unknown.
	badSCTS, badDT, badVP bool
	// emptyUDH: TP-UDHI is set and the header length octet is 0, a
	// header with no element.
	emptyUDH bool
	// st is the offset of a status report's TP-ST (0: not found).
	st int
}

// repair walks the fields of a TPDU and makes what real phones and modems
// send readable, recording a quirk for each thing it does:
//   - an address of odd length whose last semi-octet (the filler) is not
//     0xF: the filler is ignored;
//   - a time stamp with a digit that is not BCD: the rest is decoded, the
//     time is unknown (zero);
//   - a coding group 1111 DCS with its reserved bit 3 set, or a reserved
//     coding group 1000–1011: read as 8-bit data (as Gammu does);
//   - data left over after the declared user data (padding): dropped;
//   - a TP-UDL longer than the data: cut to the data, in every coding,
//     with or without a header (UCS-2 loses a dangling odd octet);
//   - 0xFF padding after a status report's TP-ST: dropped.
//
// It never fails: what it cannot walk is left to the decoder to reject.
func repair(b []byte, typ string) repaired {
	f := append([]byte(nil), b...)
	r := repaired{b: f}
	i := 1 // after the first octet
	addr := func(what string) bool {
		if i+2 > len(f) {
			return false
		}
		l, ton := int(f[i]), (f[i+1]>>4)&0x07
		ol := (l + 1) / 2
		if i+2+ol > len(f) {
			return false
		}
		if last := i + 1 + ol; l%2 == 1 && ton != 5 && f[last]>>4 != 0xF { // 5: alphanumeric, packed 7-bit
			r.quirks = append(r.quirks, fmt.Sprintf("%s of odd length ends in filler 0x%X, not 0xF; ignored", what, f[last]>>4))
			f[last] |= 0xF0
		}
		i += 2 + ol
		return true
	}
	stamp := func(what string, bad *bool) bool {
		if i+7 > len(f) {
			return false
		}
		for j, o := range f[i : i+7] {
			if o>>4 > 9 || j < 6 && o&0x0F > 9 { // the zone's low nibble holds the sign in bit 3
				r.quirks = append(r.quirks, fmt.Sprintf("%s %X has a digit that is not BCD; time unknown", what, f[i:i+7]))
				copy(f[i:i+7], []byte{0x00, 0x10, 0x10, 0x00, 0x00, 0x00, 0x00}) // placeholder, dropped after decoding
				*bad = true
				break
			}
		}
		i += 7
		return true
	}
	var dcsAt int
	switch typ {
	case Deliver:
		if !addr("TP-OA") || i+2 > len(f) {
			return r
		}
		dcsAt = i + 1
		i += 2 // PID, DCS
		if !stamp("TP-SCTS", &r.badSCTS) {
			return r
		}
	case Submit:
		i++ // MR
		if !addr("TP-DA") || i+2 > len(f) {
			return r
		}
		dcsAt = i + 1
		i += 2 // PID, DCS
		switch (f[0] >> 3) & 0x03 {
		case 2: // relative
			i++
		case 1: // enhanced
			i += 7
		case 3: // absolute: a time stamp
			if !stamp("TP-VP", &r.badVP) {
				return r
			}
		}
	case StatusReport:
		i++ // MR
		if !addr("TP-RA") || !stamp("TP-SCTS", &r.badSCTS) || !stamp("TP-DT", &r.badDT) || i >= len(f) {
			return r
		}
		r.st = i
		rest := f[i+1:]
		if len(rest) > 0 && allFF(rest) {
			r.quirks = append(r.quirks, fmt.Sprintf("%d padding octet(s) 0xFF after TP-ST ignored", len(rest)))
			r.b = f[:i+1]
		}
		return r
	default:
		return r
	}
	if i >= len(f) {
		return r
	}
	switch dcs := f[dcsAt]; {
	case dcs&0xF8 == 0xF8:
		f[dcsAt] = dcs&^0x08 | 0x04 // 8-bit data, the class kept
		r.quirks = append(r.quirks, fmt.Sprintf("data coding scheme 0x%02X has its reserved bit 3 set (coding group 1111); read as 8-bit data", dcs))
	case dcs&0xC0 == 0x80:
		f[dcsAt] = 0x04
		r.quirks = append(r.quirks, fmt.Sprintf("reserved data coding scheme 0x%02X, kept as 8-bit", dcs))
	}
	alpha, err := tpdu.DCS(f[dcsAt]).Alphabet()
	if err != nil {
		alpha = tpdu.Alpha8Bit
	}
	udl, have := int(f[i]), len(f)-i-1
	udhi := f[0]&0x40 != 0
	r.emptyUDH = udhi && udl > 0 && have > 0 && f[i+1] == 0
	need := udl
	if alpha == tpdu.Alpha7Bit {
		need = (udl*7 + 7) / 8
	}
	switch {
	case have > need:
		r.quirks = append(r.quirks, fmt.Sprintf("%d octet(s) after the declared user data ignored", have-need))
		f = f[:len(f)-(have-need)]
		have = need
	case have < need:
		n := have
		if alpha == tpdu.Alpha7Bit {
			n = have * 8 / 7
			// The last octet's top 7 bits are a whole septet: 0 there is
			// fill, as when the length is right.
			if have*8%7 == 0 && n > 0 && f[len(f)-1]>>1 == 0 {
				n--
			}
		}
		f[i] = byte(n)
		r.quirks = append(r.quirks, fmt.Sprintf("TP-UDL declares %d but the data holds %d; decoded what is there", udl, n))
	}
	if alpha == tpdu.AlphaUCS2 && have > 0 {
		body := have
		if udhi {
			body -= 1 + int(f[i+1])
		}
		if body > 0 && body%2 == 1 {
			r.quirks = append(r.quirks, fmt.Sprintf("UCS-2 user data of %d octets, an odd number; the last (0x%02X) dropped", body, f[len(f)-1]))
			f = f[:len(f)-1]
			f[i] = byte(have - 1)
		}
	}
	r.b = f
	return r
}

func allFF(b []byte) bool {
	for _, o := range b {
		if o != 0xFF {
			return false
		}
	}
	return true
}

func addressNumber(a tpdu.Address) string {
	return a.Number()
}

func (m *Message) decodeUserData(t *tpdu.TPDU) error {
	alpha, err := t.DCS.Alphabet()
	if err != nil {
		// A reserved coding group: the octets are all there is.
		m.Quirks = append(m.Quirks, fmt.Sprintf("reserved data coding scheme 0x%02X, kept as 8-bit", byte(t.DCS)))
		alpha = tpdu.Alpha8Bit
	}
	// Message waiting indication groups (110x, 1110) have no class:
	// the library says MClassUnknown (4) for them.
	if c, err := t.DCS.Class(); err == nil && c != tpdu.MClassUnknown {
		m.Class = int(c)
	}
	m.alpha, m.ud, m.udh = alpha, t.UD, t.UDH
	switch alpha {
	case tpdu.Alpha7Bit:
		m.Coding = GSM7
	case tpdu.AlphaUCS2:
		m.Coding = UCS2
	default:
		m.Coding = Bit8
	}
	if len(t.UDH) > 0 {
		m.UDH = describeUDH(t.UDH)
	} else if m.emptyUDH {
		m.UDH = &UDH{Hex: "00"}
	}
	if alpha == tpdu.Alpha8Bit {
		m.Data = append([]byte(nil), t.UD...)
		return nil
	}
	var text []byte
	if alpha == tpdu.Alpha7Bit {
		text, err = gsm7.Decode(t.UD, m.nationalTables(t.UDH)...)
	} else {
		text, err = tpdu.DecodeUserData(t.UD, t.UDH, alpha)
	}
	if err != nil {
		// A surrogate pair split across parts is completed by Join.
		if alpha == tpdu.AlphaUCS2 && len(t.UD)%2 == 0 {
			m.Quirks = append(m.Quirks, "UCS-2 ends inside a surrogate pair")
		} else {
			return fmt.Errorf("%w: user data: %v", ErrDecode, err)
		}
	}
	m.Text, m.IsText = string(text), true
	return nil
}

// nationalTables returns the GSM 7-bit tables a header's national language
// elements select (3GPP TS 23.040 9.2.3.24.15–16: IE 0x24 single shift,
// 0x25 locking shift). warthog618/sms v0.3.0 looks for them under ids 24
// and 25 decimal, so it never finds them: this is our own reading.
func (m *Message) nationalTables(h tpdu.UserDataHeader) []gsm7.DecoderOption {
	var opts []gsm7.DecoderOption
	for _, ie := range h {
		if (ie.ID != ieSingleShift && ie.ID != ieLockingShift) || len(ie.Data) != 1 {
			continue
		}
		nli := int(ie.Data[0])
		if nli < charset.Start || nli >= charset.End {
			m.Quirks = append(m.Quirks, fmt.Sprintf("unknown national language %d in element 0x%02X; default table used", nli, ie.ID))
			continue
		}
		if ie.ID == ieLockingShift {
			if nli == charset.Spanish { // Spanish has no locking table
				m.Quirks = append(m.Quirks, "Spanish has no locking shift table; default table used")
				continue
			}
			opts = append(opts, gsm7.WithCharset(nli))
		} else {
			opts = append(opts, gsm7.WithExtCharset(nli))
		}
	}
	return opts
}

func describeUDH(h tpdu.UserDataHeader) *UDH {
	raw, _ := h.MarshalBinary()
	u := &UDH{Hex: strings.ToUpper(hex.EncodeToString(raw))}
	for _, ie := range h {
		switch {
		case ie.ID == 0x00 && len(ie.Data) == 3:
			u.Concat = &Concat{Ref: int(ie.Data[0]), RefBits: 8, Total: int(ie.Data[1]), Seq: int(ie.Data[2])}
		case ie.ID == 0x08 && len(ie.Data) == 4:
			u.Concat = &Concat{Ref: int(ie.Data[0])<<8 | int(ie.Data[1]), RefBits: 16, Total: int(ie.Data[2]), Seq: int(ie.Data[3])}
		case ie.ID == 0x04 && len(ie.Data) == 2:
			u.Ports = &Ports{Dst: int(ie.Data[0]), Src: int(ie.Data[1]), Bits: 8}
		case ie.ID == 0x05 && len(ie.Data) == 4:
			u.Ports = &Ports{Dst: int(ie.Data[0])<<8 | int(ie.Data[1]), Src: int(ie.Data[2])<<8 | int(ie.Data[3]), Bits: 16}
		default:
			u.Elements = append(u.Elements, Element{ID: int(ie.ID), Data: strings.ToUpper(hex.EncodeToString(ie.Data))})
		}
	}
	return u
}
