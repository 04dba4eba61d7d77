package xform

import (
	"bytes"
	"compress/flate"
	"errors"
	"testing"
)

func compress(t testing.TB, format string, b []byte) []byte {
	t.Helper()
	out, err := Compress(b, format)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestZipBomb: 64 MB of zeros in each container is refused with
// ErrTooLarge, having inflated no more than the cap.
func TestZipBomb(t *testing.T) {
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, flate.BestSpeed)
	zero := make([]byte, 1<<20)
	for i := 0; i < 64; i++ {
		w.Write(zero)
	}
	w.Close()
	raw := buf.Bytes()
	for _, c := range []string{Zlib, Deflate, Gzip} {
		p := raw
		switch c {
		case Zlib: // header, the same deflate stream; the checksum is never reached
			p = append([]byte{0x78, 0x01}, raw...)
		case Gzip:
			p = append([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}, raw...)
		}
		_, err := Decode(p, Options{MaxSize: 256 << 10})
		if !errors.Is(err, ErrTooLarge) {
			t.Errorf("%s bomb: %v, want ErrTooLarge", c, err)
		}
	}
}

func TestDecodeNotForm(t *testing.T) {
	for _, p := range [][]byte{
		nil,
		[]byte("hello there"),
		{0x05, 0x00, 0x03, 0x01},
		{0xFF, 0xFE, 0xFD},
	} {
		if _, err := Decode(p, Options{}); !errors.Is(err, ErrNotForm) {
			t.Errorf("%q: %v, want ErrNotForm", p, err)
		}
	}
	// A form without an id is a document, not a form instance.
	if _, err := Decode([]byte("<data><a>1</a></data>"), Options{}); !errors.Is(err, ErrNoFormID) {
		t.Errorf("no id: %v", err)
	}
	// Broken compressed data says so.
	z := compress(t, Zlib, []byte("<data id='x'/>"))
	z[len(z)-1] ^= 0xFF
	if _, err := Decode(z, Options{}); err == nil || errors.Is(err, ErrNotForm) {
		t.Errorf("corrupt zlib: %v", err)
	}
	if !LooksLikeForm(z) || !LooksLikeForm([]byte(" <x/>")) || LooksLikeForm([]byte("hi")) {
		t.Error("LooksLikeForm")
	}
}

func TestLatin1XML(t *testing.T) {
	doc := append([]byte(`<?xml version="1.0" encoding="ISO-8859-1"?><r id="f"><n>`), 0xC9, 't', 0xE9)
	doc = append(doc, []byte(`</n></r>`)...)
	inst, err := Decode(doc, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := inst.Root.Child("n").InnerText(); got != "Été" {
		t.Fatalf("text %q, want Été", got)
	}
}
