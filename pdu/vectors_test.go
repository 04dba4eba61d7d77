package pdu

import (
	"strings"
	"testing"
	"time"
)

// Vectors built by hand from 3GPP TS 23.038 and 23.040 (the packing by a
// few lines of Python, not by the code under test).
func TestHandBuiltVectors(t *testing.T) {
	for _, c := range []struct {
		name, hex string
		check     func(t *testing.T, m *Message)
	}{
		{"Turkish single shift table (IE 0x24): ESC 0x53 is Ş, ESC 0x69 is ı",
			"00400C910935123254760000425020413001210A03240101D84CC39B34",
			func(t *testing.T, m *Message) { wantText(t, m, "Şaı") }},
		{"Turkish locking shift table (IE 0x25): 0x07 ı, 0x0C ğ, 0x1C Ş, 0x40 İ, 0x60 ç",
			"00400C910935123254760000425020413001210A032501013830384030",
			func(t *testing.T, m *Message) { wantText(t, m, "ığŞİç") }},
		{"Turkish locking and single shift together: ı and ESC 0x65 €",
			"00400C910935123254760000425020413001210B06240101250101874D19",
			func(t *testing.T, m *Message) { wantText(t, m, "ı€") }},
		{"negative half-hour zone -05:30 (TZ 0x2A: 22 quarters, sign bit)",
			"00000C9109351232547600004250204130012A02C834",
			func(t *testing.T, m *Message) {
				if _, off := m.Timestamp.Zone(); off != -(5*3600+1800) || m.Timestamp.Format(time.RFC3339) != "2024-05-02T14:03:10-05:30" {
					t.Errorf("timestamp %s", m.Timestamp.Format(time.RFC3339))
				}
			}},
		{"16-bit concatenation reference (IE 0x08)",
			"00400C9109351232547600044250204130012109060804123403010102",
			func(t *testing.T, m *Message) {
				c := m.UDH.Concat
				if c == nil || c.Ref != 0x1234 || c.RefBits != 16 || c.Total != 3 || c.Seq != 1 {
					t.Errorf("concat %+v", c)
				}
			}},
		{"8-bit application ports (IE 0x04) and an unknown element kept",
			"00400C91093512325476000442502041300121090704020B840A01FFAB",
			func(t *testing.T, m *Message) {
				p := m.UDH.Ports
				if p == nil || p.Dst != 0x0B || p.Src != 0x84 || p.Bits != 8 {
					t.Errorf("ports %+v", p)
				}
				if len(m.UDH.Elements) != 1 || m.UDH.Elements[0].ID != 0x0A || m.UDH.Elements[0].Data != "FF" {
					t.Errorf("elements %+v", m.UDH.Elements)
				}
				if m.Coding != Bit8 || len(m.Data) != 1 || m.Data[0] != 0xAB {
					t.Errorf("data %X", m.Data)
				}
			}},
		{"trailing padding after the user data",
			"00000C9109351232547600004250204130012102C834FFFF",
			func(t *testing.T, m *Message) {
				wantText(t, m, "Hi")
				wantQuirk(t, m, "2 octet(s) after the declared user data ignored")
			}},
		{"declared length longer than the data",
			"00000C9109351232547600004250204130012105C834",
			func(t *testing.T, m *Message) {
				wantText(t, m, "Hi")
				wantQuirk(t, m, "TP-UDL declares 5 but the data holds 2")
			}},
		{"class 0 (flash), reply path",
			"00800C9109351232547600104250204130012102C834",
			func(t *testing.T, m *Message) {
				if m.Class != 0 || !m.ReplyPath {
					t.Errorf("class %d reply path %v", m.Class, m.ReplyPath)
				}
				wantText(t, m, "Hi")
			}},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, err := DecodeHex(c.hex)
			if err != nil {
				t.Fatal(err)
			}
			c.check(t, m)
		})
	}
}

func wantQuirk(t *testing.T, m *Message, want string) {
	t.Helper()
	for _, q := range m.Quirks {
		if strings.Contains(q, want) {
			return
		}
	}
	t.Errorf("quirks %q lack %q", m.Quirks, want)
}

func wantText(t *testing.T, m *Message, want string) {
	t.Helper()
	if !m.IsText || m.Text != want {
		t.Errorf("text %q, want %q", m.Text, want)
	}
}

func TestEncodeNationalLanguageFewestParts(t *testing.T) {
	tr, err := Language("Turkish")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Language("klingon"); err == nil || !strings.Contains(err.Error(), "turkish") {
		t.Errorf("unknown language: %v", err)
	}
	for _, c := range []struct {
		name, text string
		langs      []int
		parts      int
		ie         string // the national language element in every part's UDH
	}{
		// Not in the default alphabet: UCS-2, 67 a part.
		{"no table allowed", strings.Repeat("Şşğı", 40), nil, 3, ""},
		// Locking: one septet each, 153-3 a part → 2; shift: two each → 3.
		{"locking needs fewest", strings.Repeat("Şşğı", 40), []int{tr}, 2, "250101"},
		// Both fit in one part; the single shift table comes first.
		{"tie goes to the single shift table", "Ş" + strings.Repeat("a", 150), []int{tr}, 1, "240101"},
		// The default alphabet needs no header at all.
		{"default alphabet first", strings.Repeat("a", 160), []int{tr}, 1, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			parts, err := (&Encoder{}).Encode(Outgoing{To: "+905321234567", Text: c.text, Languages: c.langs})
			if err != nil {
				t.Fatal(err)
			}
			if len(parts) != c.parts {
				t.Fatalf("%d parts, want %d", len(parts), c.parts)
			}
			var ms []*Message
			for _, p := range parts {
				m := deliverOf(t, p, "+15555550100")
				hasIE := m.UDH != nil && strings.Contains(m.UDH.Hex, strings.ToUpper(c.ie))
				if c.ie != "" && !hasIE {
					t.Errorf("part %d UDH %v lacks %s", p.Seq, m.UDH, c.ie)
				}
				ms = append(ms, m)
			}
			j, err := Join(ms)
			if err != nil || j.Text != c.text {
				t.Errorf("joined %q, %v", j.Text, err)
			}
		})
	}
}

func TestEncodeValidityAndPorts(t *testing.T) {
	parts, err := (&Encoder{}).Encode(Outgoing{To: "+15555550100", Text: "hi", Validity: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	m, err := DecodeTPDU(parts[0].TPDU)
	if err != nil || m.Validity != "24h0m0s" {
		t.Errorf("validity %q %v", m.Validity, err)
	}
	if _, err := (&Encoder{}).Encode(Outgoing{To: "+15555550100", Text: "hi", Validity: time.Minute}); err == nil {
		t.Error("a one-minute validity is accepted")
	}
	data := make([]byte, 300)
	for i := range data {
		data[i] = byte(i)
	}
	parts, err = (&Encoder{Refs: &seqRefs{}}).Encode(Outgoing{To: "+15555550100", Data: data, Ports: &Ports{Dst: 9200, Src: 9201}})
	if err != nil {
		t.Fatal(err)
	}
	// 140 - UDH (1 + 6 ports + 5 concat) = 128 octets a part.
	if len(parts) != 3 {
		t.Fatalf("%d parts", len(parts))
	}
	var ms []*Message
	for _, p := range parts {
		m := deliverOf(t, p, "+15555550123")
		if m.UDH.Ports == nil || m.UDH.Ports.Dst != 9200 || m.UDH.Ports.Src != 9201 || m.UDH.Ports.Bits != 16 || m.UDH.Concat == nil {
			t.Fatalf("part %d UDH %+v", p.Seq, m.UDH)
		}
		ms = append(ms, m)
	}
	j, _ := Join(ms)
	if string(j.Data) != string(data) {
		t.Error("8-bit data with ports does not join back")
	}
	if _, err := (&Encoder{}).Encode(Outgoing{To: "+15555550100", Text: "hi", Ports: &Ports{Dst: 1}}); err == nil {
		t.Error("ports on text are accepted")
	}
}
