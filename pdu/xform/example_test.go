package xform_test

import (
	"fmt"
	"os"

	"github.com/outpost-sms/outpost/pdu/xform"
)

// A form as a phone sends it: WBXML, zlib-compressed.
func ExampleDecode() {
	payload, err := os.ReadFile("testdata/05_minimal.v13.wbxml.zlib")
	if err != nil {
		panic(err)
	}
	inst, err := xform.Decode(payload, xform.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(inst.FormID, inst.InstanceID, inst.Format, inst.Compression)
	fmt.Printf("%s\n", inst.XML)
	// Output:
	// ping uuid:00000000-0000-4000-8000-000000000001 wbxml 1.3 zlib
	// <?xml version="1.0" encoding="UTF-8"?>
	// <data id="ping" version="1"><meta><instanceID>uuid:00000000-0000-4000-8000-000000000001</instanceID></meta></data>
}

// The compact SMS text format of a form described in the configuration.
func ExampleDecodeText() {
	forms := []xform.Form{{ID: "stock", Prefix: "STK", Delimiter: "#", Fields: []string{"item", "quantity"}}}
	inst, err := xform.DecodeText("STK#paracetamol 500mg#120", "+15550001111|2026-11-22T10:00:00Z", xform.Options{Forms: forms})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(inst.FormID, inst.Format)
	fmt.Println(inst.Root.Child("item").InnerText(), inst.Root.Child("quantity").InnerText())
	// Output:
	// stock compact
	// paracetamol 500mg 120
}
