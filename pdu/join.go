package pdu

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/warthog618/sms/encoding/tpdu"
	"github.com/warthog618/sms/encoding/ucs2"
)

// GroupKey names the message a part belongs to: parts of different
// receiving modems, senders, references or lengths never mix.
func GroupKey(modem string, m *Message) string {
	c := m.UDH.Concat
	return fmt.Sprintf("%s|%s|%d|%d|%d", modem, m.Number, c.RefBits, c.Ref, c.Total)
}

// IsPart reports whether m is one part of a concatenated message.
func (m *Message) IsPart() bool {
	return m.UDH != nil && m.UDH.Concat != nil && m.UDH.Concat.Total > 1
}

// DedupKey is the natural key of a complete inbound message (invariant 3):
// originator, service centre time stamp, and a digest of the parts, so a
// SIM slot read twice is not a second message.
func DedupKey(modem string, parts []*Message) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write(p.TPDU)
	}
	first := parts[0]
	return fmt.Sprintf("%s|%s|%s|%s", modem, first.Number, first.Timestamp.Format("20060102150405-0700"), hex.EncodeToString(h.Sum(nil))[:16])
}

// Joined is the content of a whole (or knowingly incomplete) message.
type Joined struct {
	Text    string
	Data    []byte
	IsText  bool
	Coding  string
	Parts   int
	Missing []int // sequence numbers of parts that never came
}

// Join puts the parts of one message together in sequence order. Parts may
// be given in any order; duplicates are ignored; missing parts are listed
// (and marked in text as "[…]") so that an incomplete message can still be
// delivered after its timeout.
func Join(parts []*Message) (Joined, error) {
	if len(parts) == 0 {
		return Joined{}, fmt.Errorf("join: no parts")
	}
	total := 1
	if parts[0].IsPart() {
		total = parts[0].UDH.Concat.Total
	}
	bySeq := make([]*Message, total+1)
	for _, p := range parts {
		seq := 1
		if p.IsPart() {
			seq = p.UDH.Concat.Seq
		}
		if seq >= 1 && seq <= total && bySeq[seq] == nil {
			bySeq[seq] = p
		}
	}
	j := Joined{Parts: total, Coding: parts[0].Coding, IsText: parts[0].IsText}
	var text strings.Builder
	var pending []byte // UCS-2 high surrogate carried to the next part
	for seq := 1; seq <= total; seq++ {
		p := bySeq[seq]
		if p == nil {
			j.Missing = append(j.Missing, seq)
			pending = nil
			if j.IsText {
				text.WriteString("[…]")
			}
			continue
		}
		if !p.IsText {
			j.Data = append(j.Data, p.Data...)
			continue
		}
		if p.alpha != tpdu.AlphaUCS2 {
			text.WriteString(p.Text)
			continue
		}
		ud := append(pending, p.ud...)
		pending = nil
		d, err := tpdu.DecodeUserData(ud, p.udh, tpdu.AlphaUCS2)
		if err != nil {
			if ds, ok := err.(ucs2.ErrDanglingSurrogate); ok {
				pending = []byte(ds)
			} else {
				return Joined{}, fmt.Errorf("join part %d/%d: %w", seq, total, err)
			}
		}
		text.Write(d)
	}
	if len(pending) > 0 {
		text.WriteString("\uFFFD")
	}
	j.Text = text.String()
	return j, nil
}
