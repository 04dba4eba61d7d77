package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warthog618/sms/encoding/pdumode"
	"github.com/warthog618/sms/encoding/tpdu"

	"github.com/outpost-sms/outpost/pdu"
	"github.com/outpost-sms/outpost/pdu/xform"
)

// controlledSim runs "outpost sim --control" on a pty in dir: the test
// hands it SMS-DELIVERs as if a phone had sent them, one part at a time.
func controlledSim(t *testing.T, dir string) (string, *proc) {
	path := filepath.Join(dir, "modem.pty")
	p := start(t, dir, nil, "sim", "--pty", path, "--control")
	waitFor(t, "the simulated modem's pty", 10*time.Second, func() bool {
		_, err := os.Stat(path)
		return err == nil
	})
	return path, p
}

// phoneParts encodes a message as a phone would send it and returns the
// SMS-DELIVERs (with SMSC prefix, hex) the gateway's modem would get.
func phoneParts(t *testing.T, from string, o pdu.Outgoing, ref int) []string {
	t.Helper()
	o.To = "+15555550123"
	parts, err := (&pdu.Encoder{Refs: fixedRefs(ref)}).Encode(o)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range parts {
		sub := tpdu.TPDU{Direction: tpdu.MO}
		if err := sub.UnmarshalBinary(p.TPDU); err != nil {
			t.Fatal(err)
		}
		d, _ := tpdu.NewDeliver()
		d.OA = tpdu.NewAddress(tpdu.FromNumber(from))
		if strings.HasPrefix(from, "0") {
			// A national number, as networks give local senders.
			d.OA.SetTypeOfNumber(tpdu.TonNational)
		}
		d.SCTS = tpdu.Timestamp{Time: time.Date(2026, 11, 22, 10, 0, 0, 0, time.FixedZone("", 3600))}
		d.DCS, d.UDH, d.UD = sub.DCS, sub.UDH, sub.UD
		if len(d.UDH) > 0 {
			d.FirstOctet |= tpdu.FoUDHI
		}
		tp, err := d.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := (&pdumode.PDU{SMSC: pdumode.SMSCAddress{Address: tpdu.NewAddress(tpdu.FromNumber("+15555550000"))}, TPDU: tp}).MarshalBinary()
		out = append(out, fmt.Sprintf("%X", b))
	}
	return out
}

type fixedRefs int

func (f fixedRefs) NextConcatRef() (int, error) { return int(f), nil }

func (p *proc) deliver(t *testing.T, hexPDU string) {
	t.Helper()
	if _, err := fmt.Fprintf(p.stdin, "deliver %s\n", hexPDU); err != nil {
		t.Fatal(err)
	}
}

type statusJSON struct {
	Reassembly struct{ Messages, Parts int } `json:"reassembly"`
}

func (g *gateway) status() statusJSON {
	g.t.Helper()
	out, errs, code := g.cli("status", "--json")
	if code != 0 {
		g.t.Fatalf("status: exit %d: %s", code, errs)
	}
	var s statusJSON
	json.Unmarshal([]byte(out), &s)
	return s
}

func (g *gateway) fromInbox(peer string) []inboxEntry {
	var out []inboxEntry
	for _, m := range g.inbox() {
		if m.Peer == peer {
			out = append(out, m)
		}
	}
	return out
}

// TestKillBetweenParts is acceptance 4: a phone's three-part message; the
// daemon is killed (-9) after the first part is stored; it starts again;
// the rest arrive, one of them twice. What the user sees: one whole
// message, once, in the inbox; "outpost status" shows the half-received
// message in between.
func TestKillBetweenParts(t *testing.T) {
	dir := t.TempDir()
	device, modem := controlledSim(t, dir)
	g := newGateway(t, device)
	g.start()
	text := strings.Repeat("Field report from the camp clinic. ", 12) // 420 chars: 3 parts
	parts := phoneParts(t, "+15550001111", pdu.Outgoing{Text: text}, 77)
	if len(parts) != 3 {
		t.Fatalf("%d parts", len(parts))
	}
	modem.deliver(t, parts[2]) // parts come in any order
	waitFor(t, "the first part to be stored", 20*time.Second, func() bool {
		return g.status().Reassembly.Parts == 1
	})
	g.d.kill()
	g.start()
	if s := g.status(); s.Reassembly.Messages != 1 || s.Reassembly.Parts != 1 {
		t.Fatalf("after the restart: %+v, want 1 message with 1 part waiting", s.Reassembly)
	}
	out, _, _ := g.cli("status")
	if !strings.Contains(out, "1 long message(s) waiting for missing parts") {
		t.Errorf("status does not show the waiting message:\n%s", out)
	}
	modem.deliver(t, parts[0])
	modem.deliver(t, parts[2]) // a duplicate of a stored part
	modem.deliver(t, parts[1])
	var got []inboxEntry
	waitFor(t, "the whole message in the inbox", 20*time.Second, func() bool {
		got = g.fromInbox("+15550001111")
		return len(got) > 0
	})
	if got[0].Text == nil || *got[0].Text != text || got[0].Parts != 3 || got[0].State != "complete" {
		t.Fatalf("inbox entry %+v", got[0])
	}
	// The duplicate came before the missing part: had it counted as a
	// part, the message would have completed early with part 2 missing.
	if s := g.status(); s.Reassembly.Parts != 0 {
		t.Errorf("parts still waiting: %+v", s.Reassembly)
	}
	if got = g.fromInbox("+15550001111"); len(got) != 1 {
		t.Fatalf("%d messages in the inbox, want exactly 1", len(got))
	}
}

// TestReassemblyTimeoutVisible: with reassembly_timeout = "2s", a message
// whose middle part never comes is delivered after the timeout, marked.
func TestReassemblyTimeoutVisible(t *testing.T) {
	dir := t.TempDir()
	device, modem := controlledSim(t, dir)
	g := newGatewayWith(t, device, "[sms]\nreassembly_timeout = \"2s\"\n")
	g.start()
	text := strings.Repeat("0123456789", 40)
	parts := phoneParts(t, "+15550002222", pdu.Outgoing{Text: text}, 9)
	modem.deliver(t, parts[0])
	modem.deliver(t, parts[2])
	var got []inboxEntry
	waitFor(t, "the incomplete message in the inbox", 20*time.Second, func() bool {
		got = g.fromInbox("+15550002222")
		return len(got) > 0
	})
	m := got[0]
	out, _, _ := g.cli("show", m.ID, "--json")
	if m.State != "incomplete" || !strings.Contains(out, "parts [2] of 3 never arrived") {
		t.Errorf("state %q, show:\n%s", m.State, out)
	}
	if m.Text == nil || !strings.HasPrefix(*m.Text, text[:153]) || !strings.HasSuffix(*m.Text, text[306:]) || len(*m.Text) <= 400-153 {
		t.Errorf("text %v", m.Text)
	}
}

// TestXFormMultipartThroughSim is the end of acceptance 3: a filled form,
// encoded as WBXML, zlib-compressed and sent as a five-part 8-bit SMS to
// the form port, comes out on xform/<form_id> with its ids and the
// instance XML, and not on sms/in.
func TestXFormMultipartThroughSim(t *testing.T) {
	dir := t.TempDir()
	device, modem := controlledSim(t, dir)
	g := newGatewayWith(t, device, "[xform]\nport = 9200\n")
	g.start()

	src, err := os.ReadFile("../../pdu/xform/testdata/13_household_survey.xml")
	if err != nil {
		t.Fatal(err)
	}
	tree, err := xform.ParseXML(src, false)
	if err != nil {
		t.Fatal(err)
	}
	wb, _ := xform.EncodeWBXML(tree, xform.EncodeOptions{})
	payload, _ := xform.Compress(wb, xform.Zlib)
	parts := phoneParts(t, "+15550003333", pdu.Outgoing{Data: payload, Ports: &pdu.Ports{Dst: 9200}}, 200)
	if len(parts) < 3 {
		t.Fatalf("only %d parts: the test wants a multi-part payload", len(parts))
	}
	// Plain XML as a text SMS is recognised too (no port needed).
	small := `<?xml version="1.0"?><ping id="ping"><meta><instanceID>uuid:1</instanceID></meta></ping>`
	textParts := phoneParts(t, "+15550004444", pdu.Outgoing{Text: small}, 5)
	// A broken payload to the form port is kept for a person, with why.
	broken := append([]byte{0x78, 0x9c}, []byte("not deflate at all")...)
	brokenParts := phoneParts(t, "+15550005555", pdu.Outgoing{Data: broken, Ports: &pdu.Ports{Dst: 9200}}, 6)

	_, got := g.subscribe("hq")
	for i := len(parts) - 1; i >= 0; i-- { // last part first
		modem.deliver(t, parts[i])
	}
	for _, p := range append(textParts, brokenParts...) {
		modem.deliver(t, p)
	}

	forms := map[string]map[string]any{}
	deadline := time.After(30 * time.Second)
	for len(forms) < 2 {
		select {
		case m := <-got:
			var v map[string]any
			json.Unmarshal(m.Payload(), &v)
			switch {
			case strings.Contains(m.Topic(), "/xform/"):
				forms[m.Topic()] = v
			case strings.HasSuffix(m.Topic(), "/sms/in") && (v["from"] == "+15550003333" || v["from"] == "+15550004444"):
				t.Errorf("a form was published as a text message: %s", m.Payload())
			}
		case <-deadline:
			t.Fatalf("forms published: %v", forms)
		}
	}
	v := forms["outpost/gw1/xform/enquete_menage"]
	if v == nil || v["form_id"] != "enquete_menage" || v["instance_id"] != "uuid:14141414-1414-4141-8141-141414141414" || v["from"] != "+15550003333" {
		t.Fatalf("xform/enquete_menage: %v", v)
	}
	back, err := xform.ParseXML([]byte(v["xml"].(string)), false)
	if err != nil || !xform.Equal(back, tree) {
		t.Errorf("the published instance is not the form that was sent: %v", err)
	}
	if p := forms["outpost/gw1/xform/ping"]; p == nil || p["instance_id"] != "uuid:1" {
		t.Errorf("xform/ping: %v", p)
	}
	var brokenMsg []inboxEntry
	waitFor(t, "the broken payload in the inbox", 20*time.Second, func() bool {
		brokenMsg = g.fromInbox("+15550005555")
		return len(brokenMsg) > 0
	})
	out, _, _ := g.cli("show", brokenMsg[0].ID, "--json")
	if brokenMsg[0].State != "undecodable" || !strings.Contains(out, "looks like a form submission but does not decode") {
		t.Errorf("broken payload: state %q\n%s", brokenMsg[0].State, out)
	}
}
