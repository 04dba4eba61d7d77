package xform

import "testing"

// BenchmarkDecodeWBXML decodes a 14 KB WBXML form (xml2wbxml's encoding
// of a 36 KB household survey) to its tree and instance XML.
func BenchmarkDecodeWBXML(b *testing.B) {
	p := readFile(b, "13_household_survey.v13.wbxml")
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(p, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeWBXMLZlib is the same form as it comes over SMS:
// compressed.
func BenchmarkDecodeWBXMLZlib(b *testing.B) {
	p := compress(b, Zlib, readFile(b, "13_household_survey.v13.wbxml"))
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(p, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeWBXML(b *testing.B) {
	tree := parse(b, readFile(b, "13_household_survey.xml"))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EncodeWBXML(tree, EncodeOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
