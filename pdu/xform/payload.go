package xform

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Sentinel errors.
var (
	// ErrNotForm means the payload is not in any form format: it is data
	// for someone else.
	ErrNotForm = errors.New("not an XForm payload")
	// ErrTooLarge means the payload decompresses (or decodes) to more
	// than the limit: a zip bomb, or a form far larger than any SMS form.
	ErrTooLarge = errors.New("payload too large")
	// ErrNoFormID means the document has no form id (root "id").
	ErrNoFormID = errors.New("no form id")
)

// DefaultMaxSize bounds decompressed payloads and decoded documents.
const DefaultMaxSize = 1 << 20

// Options configure payload decoding.
type Options struct {
	// MaxSize bounds the decompressed payload and the decoded document in
	// bytes (default DefaultMaxSize).
	MaxSize int
	// Forms are the forms that may arrive in the compact SMS text format.
	Forms []Form
}

func (o Options) max() int {
	if o.MaxSize <= 0 {
		return DefaultMaxSize
	}
	return o.MaxSize
}

// Instance is a decoded form instance.
type Instance struct {
	FormID     string // the root element's id attribute
	Version    string // the root element's version attribute, if any
	InstanceID string // meta/instanceID, if any
	Root       *Node
	XML        []byte // the instance document
	// Format is how it came: "wbxml 1.3", "xml" or "compact".
	Format string
	// Compression is "", "zlib", "deflate" or "gzip".
	Compression string
	Notes       []string
}

// Compression formats.
const (
	Gzip    = "gzip"
	Zlib    = "zlib"
	Deflate = "deflate"
)

// Compression names the container the payload's header announces: gzip
// and zlib carry headers; raw deflate has none and is found by trying.
func Compression(b []byte) string {
	switch {
	case len(b) >= 2 && b[0] == 0x1F && b[1] == 0x8B:
		return Gzip
	case len(b) >= 2 && b[0]&0x0F == 8 && b[0]>>4 <= 7 && (uint16(b[0])<<8|uint16(b[1]))%31 == 0:
		return Zlib
	}
	return ""
}

// Decompress inflates b as the given container, refusing to produce more
// than max bytes.
func Decompress(b []byte, format string, max int) ([]byte, error) {
	var r io.Reader
	var err error
	switch format {
	case Gzip:
		var g *gzip.Reader
		if g, err = gzip.NewReader(bytes.NewReader(b)); err == nil {
			g.Multistream(false)
			r = g
		}
	case Zlib:
		r, err = zlib.NewReader(bytes.NewReader(b))
	case Deflate:
		r = flate.NewReader(bytes.NewReader(b))
	default:
		return nil, fmt.Errorf("unknown compression %q", format)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", format, err)
	}
	out, err := io.ReadAll(io.LimitReader(r, int64(max)+1))
	if len(out) > max {
		return nil, fmt.Errorf("%w: %s data inflates to more than %d bytes", ErrTooLarge, format, max)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", format, err)
	}
	return out, nil
}

// Compress wraps b in a zlib, raw deflate or gzip container.
func Compress(b []byte, format string) ([]byte, error) {
	var buf bytes.Buffer
	var w io.WriteCloser
	switch format {
	case Zlib:
		w, _ = zlib.NewWriterLevel(&buf, zlib.BestCompression)
	case Deflate:
		w, _ = flate.NewWriter(&buf, flate.BestCompression)
	case Gzip:
		w, _ = gzip.NewWriterLevel(&buf, gzip.BestCompression)
	default:
		return nil, fmt.Errorf("unknown compression %q (want zlib, deflate or gzip)", format)
	}
	w.Write(b)
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// looksLikeXML reports whether b starts (after a byte order mark and
// white space) with '<'.
func looksLikeXML(b []byte) bool {
	b = bytes.TrimPrefix(b, []byte("\xEF\xBB\xBF"))
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) > 0 && b[0] == '<'
}

// LooksLikeForm reports whether b announces itself as a form payload: a
// gzip or zlib header, XML, or a WBXML header. Raw deflate carries no
// header; Decode still finds it by trying.
func LooksLikeForm(b []byte) bool {
	if Compression(b) != "" || looksLikeXML(b) {
		return true
	}
	d := &wbxmlDecoder{b: b, doc: &Document{}, width: 1, max: len(b)}
	return d.header() == nil && d.pos < len(b)
}

// Decode decodes a binary payload (an 8-bit SMS body or a file): WBXML or
// XML, each possibly in a zlib, raw deflate or gzip container. A payload
// in none of these formats gives ErrNotForm.
func Decode(b []byte, opt Options) (*Instance, error) {
	max := opt.max()
	if len(b) > max {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(b), max)
	}
	if c := Compression(b); c != "" {
		inner, err := Decompress(b, c, max)
		if err != nil {
			return nil, err
		}
		inst, err := decodePlain(inner, max)
		if err != nil {
			return nil, fmt.Errorf("inside %s: %w", c, err)
		}
		inst.Compression = c
		return inst, nil
	}
	inst, err := decodePlain(b, max)
	if err == nil || looksLikeXML(b) {
		return inst, err
	}
	// Raw deflate has no header: try it; keep the first error if the
	// result is no form either.
	if inner, derr := Decompress(b, Deflate, max); derr == nil {
		if inst, ierr := decodePlain(inner, max); ierr == nil {
			inst.Compression = Deflate
			return inst, nil
		} else if !errors.Is(ierr, ErrNotForm) {
			return nil, fmt.Errorf("inside deflate: %w", ierr)
		}
	} else if errors.Is(derr, ErrTooLarge) {
		return nil, derr
	}
	return nil, err
}

// decodePlain decodes uncompressed XML or WBXML.
func decodePlain(b []byte, max int) (*Instance, error) {
	if looksLikeXML(b) {
		root, err := ParseXML(b, false)
		if err != nil {
			return nil, err
		}
		return newInstance(root, "xml", nil)
	}
	if len(b) == 0 || b[0] > 0x03 {
		return nil, ErrNotForm
	}
	doc, err := DecodeWBXML(b, max)
	if err != nil {
		return nil, err
	}
	return newInstance(doc.Root, "wbxml "+doc.VersionString(), doc.Notes)
}

// newInstance reads the form id, version and instance id of a document.
func newInstance(root *Node, format string, notes []string) (*Instance, error) {
	inst := &Instance{Root: root, Format: format, Notes: notes}
	id, ok := root.Attr("id")
	if !ok || strings.TrimSpace(id) == "" {
		return nil, fmt.Errorf("%w: the root element <%s> has no id attribute, so this is no XForm instance", ErrNoFormID, root.Name)
	}
	inst.FormID = id
	inst.Version, _ = root.Attr("version")
	if meta := root.Child("meta"); meta != nil {
		if iid := meta.Child("instanceID"); iid != nil {
			inst.InstanceID = strings.TrimSpace(iid.InnerText())
		}
	}
	if inst.InstanceID == "" {
		inst.Notes = append(inst.Notes, "no meta/instanceID")
	}
	inst.XML = root.XML()
	return inst, nil
}
