package pdu

import (
	"encoding/hex"
	"errors"
	"testing"
)

// addVectorSeeds seeds a fuzz target with the hand-built vectors, the
// quirk vectors and the reference file's PDUs.
func addVectorSeeds(f *testing.F) {
	for _, s := range []string{
		"00400C910935123254760000425020413001210A03240101D84CC39B34",
		"00400C910935123254760000425020413001210A032501013830384030",
		"00400C910935123254760000425020413001210B06240101250101874D19",
		"00400C9109351232547600044250204130012109060804123403010102",
		"00400C91093512325476000442502041300121090704020B840A01FFAB",
	} {
		b, _ := hex.DecodeString(s)
		f.Add(b)
	}
	for _, v := range quirkVectors { // one or more of each quirk class
		b, _ := hex.DecodeString(v.hex)
		f.Add(b)
	}
	for _, r := range loadGammuRefs(f) {
		if b, err := hex.DecodeString(r.PDU); err == nil {
			f.Add(b)
		}
	}
}

// FuzzUDH builds an SMS-DELIVER around an arbitrary user data header and
// user data in any coding: decoding must give an answer or ErrDecode, and
// a header it reads is reported byte for byte.
func FuzzUDH(f *testing.F) {
	f.Add([]byte{0x00, 0x03, 0x12, 0x03, 0x01}, []byte("hello"), byte(0x04))
	f.Add([]byte{0x08, 0x04, 0x12, 0x34, 0x03, 0x02}, []byte{0xC8, 0x34}, byte(0x00))
	f.Add([]byte{0x05, 0x04, 0x23, 0xF0, 0x00, 0x00, 0x00, 0x03, 0x01, 0x02, 0x01}, []byte{1, 2, 3}, byte(0xF4))
	f.Add([]byte{0x24, 0x01, 0x01, 0x25, 0x01, 0x0D}, []byte{0x87, 0x4D, 0x19}, byte(0x00))
	f.Add([]byte{0x24, 0x01, 0x63}, []byte{0x1B, 0x1B}, byte(0x00))
	f.Add([]byte{}, []byte{0xD8, 0x3D}, byte(0x08))
	f.Fuzz(func(t *testing.T, udh, ud []byte, dcs byte) {
		if len(udh) > 139 || len(ud) > 140 {
			return
		}
		body := append([]byte{byte(len(udh))}, udh...)
		body = append(body, ud...)
		if len(body) > 140 {
			body = body[:140]
		}
		udl := len(body)
		if dcs&0x0C == 0 || dcs&0xF0 == 0xF0 && dcs&0x04 == 0 { // 7-bit: UDL counts septets
			udl = len(body) * 8 / 7
		}
		tp := append([]byte{0x40, 0x0B, 0x91, 0x51, 0x55, 0x55, 0x05, 0x01, 0xF0, 0x00, dcs,
			0x62, 0x11, 0x22, 0x01, 0x00, 0x00, 0x00, byte(udl)}, body...)
		m, err := DecodeTPDU(tp)
		if err != nil {
			if !errors.Is(err, ErrDecode) {
				t.Fatalf("error of no known kind: %v", err)
			}
			return
		}
		if m.UDH != nil {
			raw, err := hex.DecodeString(m.UDH.Hex)
			if err != nil || len(raw) == 0 || int(raw[0]) != len(raw)-1 {
				t.Fatalf("UDH hex %q is not a header with its length octet", m.UDH.Hex)
			}
			if c := m.UDH.Concat; c != nil && (c.RefBits != 8 && c.RefBits != 16) {
				t.Fatalf("concat %+v", c)
			}
		}
		if m.IsPart() {
			Join([]*Message{m, m})
		}
		if _, err := m.MarshalJSON(); err != nil {
			t.Fatalf("JSON: %v", err)
		}
	})
}
