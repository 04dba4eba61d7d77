package xform

import (
	"errors"
	"strings"
	"testing"
)

var testForms = []Form{
	{ID: "visite", Version: "3", Prefix: "VS", Fields: []string{"patient/nom", "patient/age", "temperature", "observations"}},
	{ID: "stock", Prefix: "STK", Delimiter: "#", Fields: []string{"article", "quantite"}},
}

func TestCompact(t *testing.T) {
	inst, err := DecodeText("vs  Ndiaye 28 37.5 fièvre depuis   deux jours", "seed1", Options{Forms: testForms})
	if err != nil {
		t.Fatal(err)
	}
	want := `<visite id="visite" version="3"><patient><nom>Ndiaye</nom><age>28</age></patient><temperature>37.5</temperature><observations>fièvre depuis   deux jours</observations><meta><instanceID>` + inst.InstanceID + `</instanceID></meta></visite>`
	if got := string(inst.XML); !strings.HasSuffix(got, want) {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if inst.FormID != "visite" || inst.Format != "compact" || !strings.HasPrefix(inst.InstanceID, "uuid:") {
		t.Errorf("%+v", inst)
	}
	again, _ := DecodeText("vs  Ndiaye 28 37.5 fièvre depuis   deux jours", "seed1", Options{Forms: testForms})
	other, _ := DecodeText("vs  Ndiaye 28 37.5 fièvre depuis   deux jours", "seed2", Options{Forms: testForms})
	if again.InstanceID != inst.InstanceID || other.InstanceID == inst.InstanceID {
		t.Error("instance id must follow the seed")
	}
	inst, err = DecodeText("STK#paracetamol 500mg#120", "s", Options{Forms: testForms})
	if err != nil || !strings.Contains(string(inst.XML), "<article>paracetamol 500mg</article><quantite>120</quantite>") {
		t.Fatalf("%v %s", err, inst.XML)
	}
	_, err = DecodeText("VS Ndiaye 28", "s", Options{Forms: testForms})
	if !errors.Is(err, ErrCompact) || !strings.Contains(err.Error(), "wants 4 values") {
		t.Errorf("short: %v", err)
	}
	for _, text := range []string{"VSX 1 2 3 4", "hello VS 1 2 3 4", "STKfoo#1", ""} {
		if _, err := DecodeText(text, "s", Options{Forms: testForms}); !errors.Is(err, ErrNotForm) {
			t.Errorf("%q: %v, want ErrNotForm", text, err)
		}
	}
	inst, err = DecodeText(`<?xml version="1.0"?><r id="f1"><meta><instanceID>u1</instanceID></meta></r>`, "s", Options{})
	if err != nil || inst.FormID != "f1" || inst.InstanceID != "u1" || inst.Format != "xml" {
		t.Errorf("xml text: %v %+v", err, inst)
	}
}

func TestFormValidate(t *testing.T) {
	if err := testForms[0].Validate(); err != nil {
		t.Error(err)
	}
	err := Form{ID: "1x", Fields: []string{"a/b c", "a/b c"}}.Validate()
	for _, want := range []string{`id "1x"`, "prefix is empty", `"b c" is not an XML name`, "listed twice"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v lacks %q", err, want)
		}
	}
}
