package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/outpost-sms/outpost/pdu/xform"
)

const okSir = "0791198948004544040C9119894882006200007050307040042206CF35689E9603"

func TestDecodePDUJSONContract(t *testing.T) {
	var out bytes.Buffer
	if code := cmdDecodePDU([]string{okSir, "--json"}, nil, &out); code != 0 {
		t.Fatalf("exit %d", code)
	}
	var v map[string]any
	if err := json.Unmarshal(out.Bytes(), &v); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"type": "deliver", "smsc": "+919884005444", "number": "+919884280026", "coding": "gsm7",
		"class": -1.0, "text": "Ok sir", "udh": nil, "timestamp": "2007-05-03T07:04:40+05:30", "replace_message": 0.0}
	for k, w := range want {
		if v[k] != w {
			t.Errorf("%s = %#v, want %#v", k, v[k], w)
		}
	}
	if q, ok := v["quirks"].([]any); !ok || len(q) != 0 {
		t.Errorf("quirks = %#v, want []", v["quirks"])
	}
	if code := cmdDecodePDU([]string{"0011", "--json"}, nil, &out); code == 0 {
		t.Error("an undecodable PDU exits 0")
	}
}

func TestDecodeBatchKeepsOrderAndErrors(t *testing.T) {
	in := strings.NewReader(okSir + "\nnot-hex\n\n" + okSir + "\n")
	var out bytes.Buffer
	if code := cmdDecodePDU([]string{"--batch", "--json"}, in, &out); code != 0 {
		t.Fatalf("exit %d", code)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], `"Ok sir"`) || !strings.HasPrefix(lines[1], `{"error":`) || !strings.Contains(lines[2], `"Ok sir"`) {
		t.Fatalf("batch output:\n%s", out.String())
	}
}

// What encode sms prints, decode join puts back together, in any order.
func TestEncodeThenJoin(t *testing.T) {
	for _, text := range []string{"hi", strings.Repeat("€uro ", 60), "emoji 😀 " + strings.Repeat("ж", 100)} {
		var enc bytes.Buffer
		if code := cmdEncodeSMS([]string{"--to", "+15555550100", "--text", text}, &enc); code != 0 {
			t.Fatalf("encode exit %d", code)
		}
		parts := strings.Split(strings.TrimSpace(enc.String()), "\n")
		for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
			parts[i], parts[j] = parts[j], parts[i]
		}
		var out bytes.Buffer
		if code := cmdDecodeJoin([]string{"--json"}, strings.NewReader(strings.Join(parts, "\n")), &out); code != 0 {
			t.Fatalf("join exit %d: %s", code, out.String())
		}
		var v struct {
			Text  string
			Parts int
		}
		json.Unmarshal(out.Bytes(), &v)
		if v.Text != text || v.Parts != len(parts) {
			t.Errorf("joined %d parts to %q, want %q", v.Parts, v.Text, text)
		}
	}
	var out bytes.Buffer
	if code := cmdEncodeSMS([]string{"--to", "+1555abc", "--text", "x"}, &out); code == 0 {
		t.Error("a bad number encodes")
	}
}

func TestDecodeEncodeXFormCLI(t *testing.T) {
	const fixtures = "../../pdu/xform/testdata/"
	var out bytes.Buffer
	if code := cmdDecodeXForm([]string{fixtures + "05_minimal.v13.wbxml.zlib", "--json"}, nil, &out); code != 0 {
		t.Fatalf("exit %d", code)
	}
	var v map[string]any
	if err := json.Unmarshal(out.Bytes(), &v); err != nil {
		t.Fatal(err)
	}
	if v["form_id"] != "ping" || v["instance_id"] != "uuid:00000000-0000-4000-8000-000000000001" || v["compression"] != "zlib" || v["format"] != "wbxml 1.3" {
		t.Errorf("%v", v)
	}
	// encode xform, then decode xform from stdin: the same document.
	var wb bytes.Buffer
	if code := cmdEncodeXForm([]string{fixtures + "02_health_visit.xml", "--compress", "gzip"}, nil, &wb); code != 0 {
		t.Fatalf("encode exit %d", code)
	}
	out.Reset()
	if code := cmdDecodeXForm([]string{"-"}, &wb, &out); code != 0 {
		t.Fatalf("decode exit %d", code)
	}
	got, err := xform.ParseXML(out.Bytes(), false)
	if err != nil {
		t.Fatal(err)
	}
	src, _ := os.ReadFile(fixtures + "02_health_visit.xml")
	want, _ := xform.ParseXML(src, false)
	if !xform.Equal(got, want) {
		t.Errorf("round trip through the CLI differs:\n%s", out.Bytes())
	}
	out.Reset()
	if code := cmdDecodeXForm([]string{"-"}, strings.NewReader("just text"), &out); code != 1 {
		t.Errorf("not a form: exit %d", code)
	}
	if code := cmdEncodeXForm([]string{fixtures + "05_minimal.xml", "--version", "2.0"}, nil, &out); code != 2 {
		t.Errorf("bad version: exit %d", code)
	}
}
