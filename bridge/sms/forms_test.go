package sms_test

import (
	"context"
	"testing"
	"time"

	"github.com/warthog618/sms/encoding/pdumode"
	"github.com/warthog618/sms/encoding/tpdu"

	"github.com/outpost-sms/outpost/bridge"
	"github.com/outpost-sms/outpost/bridge/sms"
	"github.com/outpost-sms/outpost/hw"
	"github.com/outpost-sms/outpost/pdu"
	"github.com/outpost-sms/outpost/pdu/xform"
	"github.com/outpost-sms/outpost/store"
)

// phoneSMS is a one-part SMS-DELIVER from a phone (with SMSC prefix).
func phoneSMS(t *testing.T, from string, o pdu.Outgoing) []byte {
	t.Helper()
	o.To = "+15555550123"
	parts, err := (&pdu.Encoder{}).Encode(o)
	if err != nil || len(parts) != 1 {
		t.Fatalf("encode: %v (%d parts)", err, len(parts))
	}
	sub := tpdu.TPDU{Direction: tpdu.MO}
	sub.UnmarshalBinary(parts[0].TPDU)
	d, _ := tpdu.NewDeliver()
	d.OA = tpdu.NewAddress(tpdu.FromNumber(from))
	d.SCTS = tpdu.Timestamp{Time: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
	d.DCS, d.UDH, d.UD = sub.DCS, sub.UDH, sub.UD
	if len(d.UDH) > 0 {
		d.FirstOctet |= tpdu.FoUDHI
	}
	tp, _ := d.MarshalBinary()
	b, _ := (&pdumode.PDU{TPDU: tp}).MarshalBinary()
	return b
}

// TestFormsRecognised: what is a form goes to the form routes with its
// ids; what only resembles one stays a message for people.
func TestFormsRecognised(t *testing.T) {
	r := newRig(t, false)
	r.router.FormRoutes = []string{"app"}
	r.conn.Forms = &sms.FormOptions{Port: 9200, Options: xform.Options{Forms: []xform.Form{
		{ID: "visite", Prefix: "VS", Fields: []string{"patient/nom", "age", "notes"}},
	}}}
	wb, _ := xform.EncodeWBXML(mustParse(t, `<r id="stock"><meta><instanceID>uuid:9</instanceID></meta></r>`), xform.EncodeOptions{})
	z, _ := xform.Compress(wb, xform.Deflate)
	for _, c := range []struct {
		name           string
		o              pdu.Outgoing
		formID, instID string
		state          string
	}{
		{"compact text", pdu.Outgoing{Text: "vs Ndiaye 28 toux et fièvre"}, "visite", "", store.Complete},
		{"raw deflate WBXML without a port", pdu.Outgoing{Data: z}, "stock", "uuid:9", store.Complete},
		{"a heart is not XML", pdu.Outgoing{Text: "<3 see you at the clinic"}, "", "", store.Complete},
		{"8-bit data that is no form", pdu.Outgoing{Data: []byte("\x05\x00hello")}, "", "", store.Complete},
		{"data for another port", pdu.Outgoing{Data: wb, Ports: &pdu.Ports{Dst: 2948}}, "", "", store.Complete},
		{"broken payload on the form port", pdu.Outgoing{Data: []byte("\x03\x01\x6a\x10garbage"), Ports: &pdu.Ports{Dst: 9200}}, "", "", store.Undecodable},
		{"compact text with too few values", pdu.Outgoing{Text: "VS Ndiaye"}, "", "", store.Undecodable},
	} {
		t.Run(c.name, func(t *testing.T) {
			from := "+1555000" + string(rune('0'+len(c.name)%10)) + "123"
			n := len(r.app.all())
			if _, err := r.conn.HandleInbound(context.Background(), hw.Inbound{Modem: "m1", PDU: phoneSMS(t, from, c.o)}); err != nil {
				t.Fatal(err)
			}
			m := r.app.next(t, n)
			if m.FormID != c.formID || m.State != c.state || (c.instID != "" && m.InstanceID != c.instID) {
				t.Fatalf("form %q instance %q state %q detail %q", m.FormID, m.InstanceID, m.State, m.Detail)
			}
			if c.formID != "" && (m.Coding != "xform" || m.Text == nil || m.Data == nil) {
				t.Errorf("a form keeps its XML and its payload: coding %q", m.Coding)
			}
			if c.formID == "visite" && m.InstanceID == "" {
				t.Error("a compact form gets an instance id")
			}
		})
	}
}

// next waits for the app's message number n (from 0).
func (a *app) next(t *testing.T, n int) store.Message {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(a.all()) <= n {
		if time.Now().After(deadline) {
			t.Fatal("nothing reached the app")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return a.all()[n]
}

func mustParse(t *testing.T, s string) *xform.Node {
	n, err := xform.ParseXML([]byte(s), false)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestWAPPushIsNoForm: with no form port configured, a WBXML document for
// another application port (a WAP push Service Indication, tag tokens of
// its own DTD) stays an ordinary message.
func TestWAPPushIsNoForm(t *testing.T) {
	r := newRig(t, false)
	r.router.FormRoutes = []string{"app"}
	r.conn.Forms = &sms.FormOptions{}
	si := []byte{0x02, 0x05, 0x6a, 0x00, 0x45, 0xC6, 0x0C, 0x03, 'x', 0x00, 0x01, 0x01, 0x01}
	if _, err := r.conn.HandleInbound(context.Background(), hw.Inbound{Modem: "m1", PDU: phoneSMS(t, "+15550009999", pdu.Outgoing{Data: si, Ports: &pdu.Ports{Dst: 2948, Src: 9200}})}); err != nil {
		t.Fatal(err)
	}
	if m := r.app.next(t, 0); m.FormID != "" || m.State != store.Complete || m.Coding != "8bit" {
		t.Errorf("WAP push: form %q state %q coding %q detail %q", m.FormID, m.State, m.Coding, m.Detail)
	}
}

// TestSendPortAndValidity: a send's port and validity reach the PDU the
// modem is given.
func TestSendPortAndValidity(t *testing.T) {
	r := newRig(t, true)
	id, err := r.router.Submit(context.Background(), bridge.SendRequest{To: []string{"+15555550100"}, Data: []byte{0xCA, 0xFE},
		Port: 9200, Validity: 12 * time.Hour, Report: true, Source: "test"})
	if err != nil {
		t.Fatal(err)
	}
	v := r.waitState(t, id, store.Delivered)
	if v.Validity != "12h0m0s" || v.Port != 9200 {
		t.Errorf("stored validity %q port %d", v.Validity, v.Port)
	}
	var sent *pdu.Message
	for _, line := range r.sim.Commands() {
		if m, err := pdu.DecodeHex(line); err == nil && m.Type == pdu.Submit {
			sent = m
		}
	}
	if sent == nil {
		t.Fatalf("no SMS-SUBMIT among the modem's commands %q", r.sim.Commands())
	}
	if sent.UDH == nil || sent.UDH.Ports == nil || sent.UDH.Ports.Dst != 9200 || sent.Validity != "12h0m0s" || string(sent.Data) != "\xCA\xFE" {
		t.Errorf("sent %+v udh %+v", sent, sent.UDH)
	}
}

// TestExpiresBecomesValidity: a send that expires and names no validity
// asks the SMSC to stop trying when Outpost would (the time left, in the
// steps the relative validity period can say).
func TestExpiresBecomesValidity(t *testing.T) {
	r := newRig(t, true)
	id, err := r.router.Submit(context.Background(), bridge.SendRequest{To: []string{"+15555550100"}, Text: "clinic closes at 6",
		Expires: time.Now().Add(2*time.Hour + 20*time.Second), Report: true, Source: "test"})
	if err != nil {
		t.Fatal(err)
	}
	r.waitState(t, id, store.Delivered)
	var sent *pdu.Message
	for _, line := range r.sim.Commands() {
		if m, err := pdu.DecodeHex(line); err == nil && m.Type == pdu.Submit {
			sent = m
		}
	}
	if sent == nil || sent.Validity != "2h0m0s" {
		t.Fatalf("sent %+v", sent)
	}
}
