package pdu

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/warthog618/sms"
	"github.com/warthog618/sms/encoding/pdumode"
	"github.com/warthog618/sms/encoding/tpdu"
)

type seqRefs struct{ n int }

func (s *seqRefs) NextConcatRef() (int, error) { s.n++; return s.n, nil }

// deliverOf turns an encoded SUBMIT into the DELIVER a recipient would get,
// as the network does.
func deliverOf(t *testing.T, p Part, from string) *Message {
	t.Helper()
	var sub tpdu.TPDU
	sub.Direction = tpdu.MO
	if err := sub.UnmarshalBinary(p.TPDU); err != nil {
		t.Fatal(err)
	}
	d, _ := tpdu.NewDeliver()
	d.OA = tpdu.NewAddress(tpdu.FromNumber(from))
	d.DCS, d.UDH, d.UD = sub.DCS, sub.UDH, sub.UD
	if len(d.UDH) > 0 {
		d.FirstOctet |= tpdu.FoUDHI
	}
	b, err := d.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	m, err := DecodeTPDU(b)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestEncodeSegmentsAndJoins(t *testing.T) {
	cases := []struct {
		name   string
		text   string
		parts  int
		coding string
	}{
		{"single gsm7", "hi", 1, GSM7},
		{"160 gsm7", strings.Repeat("a", 160), 1, GSM7},
		{"161 gsm7", strings.Repeat("a", 161), 2, GSM7},
		{"400 gsm7", strings.Repeat("0123456789", 40), 3, GSM7},
		{"escapes at edge", strings.Repeat("a", 152) + "€€€€€", 2, GSM7},
		{"70 ucs2", strings.Repeat("ж", 70), 1, UCS2},
		{"71 ucs2", strings.Repeat("ж", 71), 2, UCS2},
		{"emoji", "hello 😀 world 🌍 " + strings.Repeat("😀", 40), 2, UCS2},
	}
	enc := &Encoder{Refs: &seqRefs{}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			parts, err := enc.Encode(Outgoing{To: "+15555550100", Text: c.text, Report: true})
			if err != nil {
				t.Fatal(err)
			}
			if len(parts) != c.parts {
				t.Fatalf("%d parts, want %d", len(parts), c.parts)
			}
			var got []*Message
			for i := len(parts) - 1; i >= 0; i-- { // any order
				sub, err := DecodeTPDU(parts[i].TPDU)
				if err != nil {
					t.Fatal(err)
				}
				if sub.Type != Submit || !sub.StatusRequested || sub.Number != "+15555550100" || sub.Coding != c.coding {
					t.Fatalf("submit decoded as %+v", sub)
				}
				got = append(got, deliverOf(t, parts[i], "+15555550123"))
			}
			j, err := Join(got)
			if err != nil {
				t.Fatal(err)
			}
			if j.Text != c.text || len(j.Missing) != 0 {
				t.Fatalf("joined %q (missing %v), want %q", j.Text, j.Missing, c.text)
			}
		})
	}
}

func TestConcatRefFromSource(t *testing.T) {
	refs := &seqRefs{n: 41}
	enc := &Encoder{Refs: refs}
	parts, _ := enc.Encode(Outgoing{To: "+15555550100", Text: strings.Repeat("x", 200)})
	m, _ := DecodeTPDU(parts[0].TPDU)
	if m.UDH == nil || m.UDH.Concat == nil || m.UDH.Concat.Ref != 42 || m.UDH.Concat.Total != 2 {
		t.Fatalf("udh %+v", m.UDH)
	}
	// A single-part message takes no reference.
	enc.Encode(Outgoing{To: "+15555550100", Text: "short"})
	if refs.n != 42 {
		t.Fatalf("single part consumed a reference: %d", refs.n)
	}
}

func TestJoinMarksMissingParts(t *testing.T) {
	enc := &Encoder{Refs: &seqRefs{}}
	parts, _ := enc.Encode(Outgoing{To: "+15555550100", Text: strings.Repeat("abcdefghij", 40)})
	j, err := Join([]*Message{deliverOf(t, parts[0], "+1555"), deliverOf(t, parts[2], "+1555")})
	if err != nil {
		t.Fatal(err)
	}
	if len(j.Missing) != 1 || j.Missing[0] != 2 || !strings.Contains(j.Text, "[…]") {
		t.Fatalf("got %+v", j)
	}
}

func TestEncodeRejectsBadInput(t *testing.T) {
	enc := &Encoder{}
	for _, c := range []struct {
		o    Outgoing
		want error
	}{
		{Outgoing{To: "", Text: "x"}, ErrBadNumber},
		{Outgoing{To: "+1555abc", Text: "x"}, ErrBadNumber},
		{Outgoing{To: "12", Text: "x"}, ErrBadNumber},
		{Outgoing{To: "+15555550100", Text: ""}, ErrEmpty},
		{Outgoing{To: "+15555550100", Text: strings.Repeat("x", 153*256)}, ErrTooLong},
	} {
		if _, err := enc.Encode(c.o); !errors.Is(err, c.want) {
			t.Errorf("%+v: got %v, want %v", c.o.To, err, c.want)
		}
	}
}

func TestDecodeStatusReport(t *testing.T) {
	// From the reference set: delivered report for MR 1.
	m, err := DecodeHex("07912658050000F006010D91265817373754F501010161705382010101617083820000")
	if err != nil {
		t.Fatal(err)
	}
	if m.Type != StatusReport || m.MessageReference != 1 || m.Status != 0 || m.Number != "+6285717373455" {
		t.Fatalf("%+v", m)
	}
	if o, final := ReportOutcome(m.Status); o != ReportDelivered || !final {
		t.Fatalf("outcome %s %v", o, final)
	}
}

func TestReportOutcomes(t *testing.T) {
	for st, want := range map[int]string{0: ReportDelivered, 1: ReportDelivered, 0x21: ReportTrying, 0x41: ReportFailedPerm, 0x62: ReportFailedTemp, 0xA0: ReportFailedPerm} {
		if got, _ := ReportOutcome(st); got != want {
			t.Errorf("TP-ST 0x%02X: %s, want %s", st, got, want)
		}
	}
}

func TestDecodeRejectsGarbageClearly(t *testing.T) {
	for _, in := range []string{"", "zz", "07", "0791198948004544", "0791198948004544FF"} {
		if _, err := DecodeHex(in); !errors.Is(err, ErrDecode) {
			t.Errorf("%q: want ErrDecode, got %v", in, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		"0791198948004544040C9119894882006200007050307040042206CF35689E9603",
		"07912658050000F006010D91265817373754F501010161705382010101617083820000",
		"0791539111161616114F048123000000FF06D0B79BFE9E03",
	} {
		b, _ := hex.DecodeString(s)
		f.Add(b)
	}
	addVectorSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err == nil && m.IsPart() {
			Join([]*Message{m})
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	raw, _ := hex.DecodeString("0791198948004544040C9119894882006200007050307040042206CF35689E9603")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(raw); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWarthogDecode is the same PDU through warthog618/sms alone, for
// comparison.
func BenchmarkWarthogDecode(b *testing.B) {
	raw, _ := hex.DecodeString("040C9119894882006200007050307040042206CF35689E9603")
	b.ReportAllocs()
	for b.Loop() {
		t, err := sms.Unmarshal(raw)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := sms.Decode([]*tpdu.TPDU{t}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeLong(b *testing.B) {
	enc := &Encoder{Refs: &seqRefs{}}
	text := strings.Repeat("0123456789", 40)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := enc.Encode(Outgoing{To: "+15555550100", Text: text, Report: true}); err != nil {
			b.Fatal(err)
		}
	}
}

// referenceTPDUs are the reference file's PDUs that both decoders read,
// with and without their SMSC prefix.
func referenceTPDUs(b *testing.B) (full, tpdus [][]byte) {
	for _, r := range loadGammuRefs(b) {
		raw, err := hex.DecodeString(r.PDU)
		if err != nil {
			continue
		}
		var p pdumode.PDU
		if p.UnmarshalBinary(raw) != nil || raw[len(raw)-len(p.TPDU)]&0x03 != 0 {
			continue // deliver only: what warthog618/sms's Unmarshal reads as MT
		}
		if _, err := Decode(raw); err != nil {
			continue
		}
		t, err := sms.Unmarshal(p.TPDU)
		if err != nil {
			continue
		}
		if _, err := sms.Decode([]*tpdu.TPDU{t}); err != nil {
			continue
		}
		full, tpdus = append(full, raw), append(tpdus, p.TPDU)
	}
	return full, tpdus
}

// BenchmarkDecodeReference decodes every reference SMS-DELIVER (one op is
// one PDU, averaged over the set).
func BenchmarkDecodeReference(b *testing.B) {
	full, _ := referenceTPDUs(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := Decode(full[i%len(full)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkWarthogDecodeReference is the same PDUs through warthog618/sms.
func BenchmarkWarthogDecodeReference(b *testing.B) {
	_, tpdus := referenceTPDUs(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		t, err := sms.Unmarshal(tpdus[i%len(tpdus)])
		if err != nil {
			b.Fatal(err)
		}
		if _, err := sms.Decode([]*tpdu.TPDU{t}); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkEncodeNationalLanguage weighs the fewest-parts choice among
// the default alphabet, the Turkish tables and UCS-2.
func BenchmarkEncodeNationalLanguage(b *testing.B) {
	enc := &Encoder{Refs: &seqRefs{}}
	text := strings.Repeat("Şşğı abc ", 40)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := enc.Encode(Outgoing{To: "+905321234567", Text: text, Languages: []int{1}}); err != nil {
			b.Fatal(err)
		}
	}
}

// A number given with '+' goes out international (type of address 0x91);
// one without, national or a short code, as unknown (0x81), which the
// network reads in its own numbering plan: marked international, 0712…
// would be a number in a country "07…".
func TestDestinationTypeOfNumber(t *testing.T) {
	enc := &Encoder{Refs: &seqRefs{}}
	for _, c := range []struct {
		to      string
		toa     byte
		decoded string
	}{
		{"+254712345678", 0x91, "+254712345678"},
		{"0712345678", 0x81, "0712345678"},
		{"12345", 0x81, "12345"},
	} {
		parts, err := enc.Encode(Outgoing{To: c.to, Text: "hi"})
		if err != nil {
			t.Fatal(err)
		}
		if got := parts[0].TPDU[3]; got != c.toa {
			t.Errorf("to %s: type of address %#x, want %#x", c.to, got, c.toa)
		}
		sub, err := DecodeTPDU(parts[0].TPDU)
		if err != nil || sub.Number != c.decoded {
			t.Errorf("to %s: decoded %q (%v), want %q", c.to, sub.Number, err, c.decoded)
		}
	}
}
