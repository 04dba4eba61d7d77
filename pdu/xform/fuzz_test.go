package xform

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func addFixtureSeeds(f *testing.F, compressed bool) {
	names, _ := filepath.Glob("testdata/*")
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil || len(b) > 4096 {
			continue
		}
		f.Add(b)
		if compressed && strings.HasSuffix(n, ".xml") {
			tree, err := ParseXML(b, false)
			if err != nil {
				continue
			}
			w, _ := EncodeWBXML(tree, EncodeOptions{})
			f.Add(w)
			for _, c := range []string{Zlib, Deflate, Gzip} {
				f.Add(compress(f, c, w))
			}
		}
	}
}

// FuzzDecodeWBXML: any input either fails with ErrWBXML/ErrTooLarge or
// decodes to a tree whose XML parses back to it and which our encoder
// writes and reads back unchanged.
func FuzzDecodeWBXML(f *testing.F) {
	addFixtureSeeds(f, false)
	for _, h := range []string{
		"03 01 6a 0c 666f726d00 696400 7800 6100 c4 00 04 05 03 7100 83 08 01 44 0a 03 68 6900 83 08 02 26 01 04 0a 01",
		"03 01 6a 07 666f726d00 6200 44 00 c3 03 616263 44 05 c3 02 00ff 01 01",
		"03 01 6a 0c 666f726d00 746172676574 00 43 04 05 03 7800 01 44 00 43 04 05 03 6400 01 01",
		"03 01 87 75 08 0066 0072 006d 0000 44 00 03 00e9 d83d de00 0000 01",
		"03 00 00 6a 0b 2d2f2f582f2f454e00 6600 04 09",
	} {
		f.Add(hexdoc(h))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		doc, err := DecodeWBXML(b, 1<<20)
		if err != nil {
			if !errors.Is(err, ErrWBXML) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error of no known kind: %v", err)
			}
			return
		}
		x := doc.Root.XML()
		back, err := ParseXML(x, true)
		if err != nil {
			t.Fatalf("decoded XML does not parse: %v\n%s", err, x)
		}
		if !bytes.ContainsRune(x, '\\') && !Equal(back, doc.Root) {
			t.Fatalf("XML does not parse back to the tree:\n%s", x)
		}
		w, err := EncodeWBXML(doc.Root, EncodeOptions{})
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		again, err := DecodeWBXML(w, 0)
		if err != nil || !Equal(again.Root, doc.Root) {
			t.Fatalf("re-encoded document differs: %v", err)
		}
	})
}

// FuzzDecompress: Decode never allocates past its cap and never panics,
// whatever the container claims.
func FuzzDecompress(f *testing.F) {
	addFixtureSeeds(f, true)
	f.Add([]byte{0x78, 0x9c})
	f.Add([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		const max = 64 << 10
		inst, err := Decode(b, Options{MaxSize: max})
		if err != nil {
			return
		}
		if len(inst.XML) > 4*max {
			t.Fatalf("instance of %d bytes from a %d-byte cap", len(inst.XML), max)
		}
		if inst.FormID == "" {
			t.Fatal("instance without a form id")
		}
	})
}

// FuzzDecodeText: the SMS text format either matches a form and gives a
// well-formed instance of it, or says why not.
func FuzzDecodeText(f *testing.F) {
	for _, s := range []string{"VS Ndiaye 28 37.5 fièvre", "STK#a#1", "vs", "STK#", "<r id='x'/>", "VS  a\tb\nc d", "hello"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		inst, err := DecodeText(text, "seed", Options{Forms: testForms, MaxSize: 64 << 10})
		if err != nil {
			return
		}
		if _, err := ParseXML(inst.XML, true); err != nil {
			t.Fatalf("instance does not parse: %v\n%s", err, inst.XML)
		}
		if inst.Format == "compact" {
			if inst.FormID != "visite" && inst.FormID != "stock" {
				t.Fatalf("form %q", inst.FormID)
			}
		}
	})
}
