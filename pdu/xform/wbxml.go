package xform

import (
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// Global tokens of WBXML (WAP-192-WBXML, section 7.1). They mean the same
// on every code page.
const (
	tokSwitchPage = 0x00
	tokEnd        = 0x01
	tokEntity     = 0x02
	tokStrI       = 0x03
	tokLiteral    = 0x04
	tokExtI0      = 0x40
	tokExtI2      = 0x42
	tokPI         = 0x43
	tokLiteralC   = 0x44
	tokExtT0      = 0x80
	tokExtT2      = 0x82
	tokStrT       = 0x83
	tokLiteralA   = 0x84
	tokExt0       = 0xC0
	tokExt2       = 0xC2
	tokOpaque     = 0xC3
	tokLiteralAC  = 0xC4

	flagAttrs   = 0x80
	flagContent = 0x40
)

// Character sets by IANA MIBenum, as the WBXML header names them.
const (
	CharsetUnknown = 0
	CharsetASCII   = 3
	CharsetLatin1  = 4
	CharsetUTF8    = 106
	CharsetUCS2    = 1000
	CharsetUTF16BE = 1013
	CharsetUTF16LE = 1014
	CharsetUTF16   = 1015
)

// PublicIDUnknown is the public identifier 0x01: "unknown or missing".
const PublicIDUnknown = 0x01

// ErrWBXML means the input is not a WBXML document this package reads.
var ErrWBXML = errors.New("invalid WBXML")

// Document is a decoded WBXML document.
type Document struct {
	Version        byte   // 0x00 is 1.0 … 0x03 is 1.3
	PublicID       uint32 // 0 when the id is a string (PublicIDString)
	PublicIDString string
	Charset        uint32 // MIBenum; 0 when unknown (read as UTF-8)
	Root           *Node
	// Notes lists what was decoded with a caveat: extension tokens,
	// opaque data written as base64, bytes after the document.
	Notes []string
}

// VersionString is the version as "1.3".
func (d *Document) VersionString() string {
	return fmt.Sprintf("%d.%d", d.Version>>4+1, d.Version&0x0F)
}

type wbxmlDecoder struct {
	b     []byte
	pos   int
	table []byte
	width int // bytes per code unit of the charset: 1, or 2 for UTF-16
	doc   *Document
	out   int // bytes of names and text produced, bounded by max
	max   int
	// cache holds decoded string table entries by offset.
	cache map[uint32]string
}

// DecodeWBXML decodes a WBXML document. Tags and attributes must be
// literals (names in the string table), as XForm encoders write them; a
// code-page token of some other document type is an error that names it.
// maxOut bounds the size of the decoded names and text (string table
// references can repeat one string many times); 0 means 8 MiB.
func DecodeWBXML(b []byte, maxOut int) (*Document, error) {
	if maxOut <= 0 {
		maxOut = 8 << 20
	}
	d := &wbxmlDecoder{b: b, doc: &Document{}, width: 1, max: maxOut}
	if err := d.header(); err != nil {
		return nil, err
	}
	root, err := d.body()
	if err != nil {
		return nil, err
	}
	d.doc.Root = root
	d.doc.Notes = append(d.doc.Notes, qualifyNames(root)...)
	if err := checkNames(root); err != nil {
		return nil, err
	}
	return d.doc, nil
}

func (d *wbxmlDecoder) errf(format string, a ...any) error {
	return fmt.Errorf("%w at byte %d: %s", ErrWBXML, d.pos, fmt.Sprintf(format, a...))
}

func (d *wbxmlDecoder) tooLarge() error {
	return fmt.Errorf("%w at byte %d: decoded document larger than %d bytes", ErrTooLarge, d.pos, d.max)
}

func (d *wbxmlDecoder) byte() (byte, error) {
	if d.pos >= len(d.b) {
		return 0, d.errf("unexpected end of data")
	}
	c := d.b[d.pos]
	d.pos++
	return c, nil
}

// mbUint32 reads a multi-byte unsigned integer: 7 bits a byte, high bit
// set on all but the last, at most 5 bytes.
func (d *wbxmlDecoder) mbUint32() (uint32, error) {
	var v uint64
	for i := 0; i < 5; i++ {
		c, err := d.byte()
		if err != nil {
			return 0, err
		}
		v = v<<7 | uint64(c&0x7F)
		if c&0x80 == 0 {
			if v > 0xFFFFFFFF {
				return 0, d.errf("multi-byte integer overflows 32 bits")
			}
			return uint32(v), nil
		}
	}
	return 0, d.errf("multi-byte integer longer than 5 bytes")
}

func (d *wbxmlDecoder) header() error {
	v, err := d.byte()
	if err != nil {
		return err
	}
	if v > 0x03 {
		return d.errf("version byte 0x%02X: only 1.0 to 1.3 (0x00–0x03) exist", v)
	}
	d.doc.Version = v
	pid, err := d.mbUint32()
	if err != nil {
		return err
	}
	var pidIndex uint32
	if pid == 0 {
		if pidIndex, err = d.mbUint32(); err != nil {
			return err
		}
	}
	d.doc.PublicID = pid
	if v > 0 { // WBXML 1.0 has no charset field
		cs, err := d.mbUint32()
		if err != nil {
			return err
		}
		d.doc.Charset = cs
	}
	switch d.doc.Charset {
	case CharsetUnknown, CharsetUTF8, CharsetASCII, CharsetLatin1:
	case CharsetUCS2, CharsetUTF16, CharsetUTF16BE, CharsetUTF16LE:
		d.width = 2
	default:
		return d.errf("charset MIBenum %d is not supported (UTF-8, US-ASCII, ISO-8859-1, UCS-2 and UTF-16 are)", d.doc.Charset)
	}
	n, err := d.mbUint32()
	if err != nil {
		return err
	}
	if int64(n) > int64(len(d.b)-d.pos) {
		return d.errf("string table of %d bytes but only %d bytes follow", n, len(d.b)-d.pos)
	}
	d.table = d.b[d.pos : d.pos+int(n)]
	d.pos += int(n)
	if pid == 0 {
		s, err := d.tableString(pidIndex)
		if err != nil {
			return fmt.Errorf("public id: %w", err)
		}
		d.doc.PublicIDString = s
	}
	return nil
}

// terminated returns the string at the start of b up to its terminator
// (one NUL code unit) and the bytes it used including the terminator.
func (d *wbxmlDecoder) terminated(b []byte) ([]byte, int, bool) {
	for i := 0; i+d.width <= len(b); i += d.width {
		if b[i] == 0 && (d.width == 1 || b[i+1] == 0) {
			return b[:i], i + d.width, true
		}
	}
	return nil, 0, false
}

// text converts a string in the document's charset to UTF-8.
func (d *wbxmlDecoder) text(raw []byte) (string, error) {
	d.out += len(raw)
	if d.out > d.max {
		return "", d.tooLarge()
	}
	switch d.doc.Charset {
	case CharsetLatin1:
		r := make([]rune, len(raw))
		for i, c := range raw {
			r[i] = rune(c)
		}
		return string(r), nil
	case CharsetUCS2, CharsetUTF16, CharsetUTF16BE, CharsetUTF16LE:
		u := make([]uint16, len(raw)/2)
		le := d.doc.Charset == CharsetUTF16LE
		for i := range u {
			if le {
				u[i] = uint16(raw[2*i]) | uint16(raw[2*i+1])<<8
			} else {
				u[i] = uint16(raw[2*i])<<8 | uint16(raw[2*i+1])
			}
		}
		if len(u) > 0 && u[0] == 0xFEFF {
			u = u[1:]
		}
		return string(utf16.Decode(u)), nil
	}
	if !utf8.Valid(raw) {
		return "", d.errf("string is not valid UTF-8")
	}
	return string(raw), nil
}

func (d *wbxmlDecoder) inline() (string, error) {
	raw, n, ok := d.terminated(d.b[d.pos:])
	if !ok {
		return "", d.errf("inline string has no terminator")
	}
	d.pos += n
	return d.text(raw)
}

func (d *wbxmlDecoder) tableString(off uint32) (string, error) {
	// Names repeat in every element: decode each table entry once.
	if str, ok := d.cache[off]; ok {
		if d.out += len(str); d.out > d.max {
			return "", d.tooLarge()
		}
		return str, nil
	}
	str, err := d.tableEntry(off)
	if err == nil {
		if d.cache == nil {
			d.cache = map[uint32]string{}
		}
		d.cache[off] = str
	}
	return str, err
}

func (d *wbxmlDecoder) tableEntry(off uint32) (string, error) {
	if int64(off) >= int64(len(d.table)) {
		return "", d.errf("string table reference %d outside the %d-byte table", off, len(d.table))
	}
	raw, _, ok := d.terminated(d.table[off:])
	if !ok {
		return "", d.errf("string table entry at %d has no terminator", off)
	}
	return d.text(raw)
}

func (d *wbxmlDecoder) tableRef() (string, error) {
	off, err := d.mbUint32()
	if err != nil {
		return "", err
	}
	return d.tableString(off)
}

func (d *wbxmlDecoder) body() (*Node, error) {
	// pi* element pi*; processing instructions around the root are read
	// and dropped, as an XML parser would keep them outside the tree.
	for {
		c, err := d.peek()
		if err != nil {
			return nil, err
		}
		if c == tokSwitchPage {
			d.pos += 2
			continue
		}
		if c != tokPI {
			break
		}
		d.pos++
		if _, err := d.pi(); err != nil {
			return nil, err
		}
	}
	root, err := d.element(0)
	if err != nil {
		return nil, err
	}
	for d.pos < len(d.b) {
		if d.b[d.pos] != tokPI {
			d.doc.Notes = append(d.doc.Notes, fmt.Sprintf("%d bytes after the root element ignored", len(d.b)-d.pos))
			break
		}
		d.pos++
		if _, err := d.pi(); err != nil {
			return nil, err
		}
	}
	return root, nil
}

func (d *wbxmlDecoder) peek() (byte, error) {
	if d.pos >= len(d.b) {
		return 0, d.errf("unexpected end of data")
	}
	return d.b[d.pos], nil
}

func (d *wbxmlDecoder) element(depth int) (*Node, error) {
	if depth >= maxDepth {
		return nil, d.errf("elements nested deeper than %d", maxDepth)
	}
	tok, err := d.byte()
	if err != nil {
		return nil, err
	}
	n := &Node{Kind: ElementNode}
	switch tok {
	case tokLiteral, tokLiteralA, tokLiteralC, tokLiteralAC:
		if n.Name, err = d.tableRef(); err != nil {
			return nil, err
		}
	default:
		if tok&0x3F < 5 || tok == tokPI {
			return nil, d.errf("global token 0x%02X where a tag was expected", tok)
		}
		return nil, d.errf("tag token 0x%02X is defined by the document type (public id %d), which this decoder does not know; only literal tags are read", tok&0x3F, d.doc.PublicID)
	}
	if tok&flagAttrs != 0 {
		if n.Attrs, err = d.attrs(); err != nil {
			return nil, err
		}
	}
	if tok&flagContent != 0 {
		if err := d.content(n, depth); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// valuePiece reads one piece of text that may appear in content or in an
// attribute value: an inline or table string, an entity, an extension or
// opaque data. ok is false when tok is none of them.
func (d *wbxmlDecoder) valuePiece(tok byte) (s string, ok bool, err error) {
	switch {
	case tok == tokStrI:
		s, err = d.inline()
	case tok == tokStrT:
		s, err = d.tableRef()
	case tok == tokEntity:
		var c uint32
		if c, err = d.mbUint32(); err == nil {
			if !isXMLChar(rune(c)) {
				return "", true, d.errf("entity &#%d; is not a character", c)
			}
			s = string(rune(c))
		}
	case tok >= tokExtI0 && tok <= tokExtI2:
		d.note(fmt.Sprintf("extension token EXT_I_%d read as text", tok-tokExtI0))
		s, err = d.inline()
	case tok >= tokExtT0 && tok <= tokExtT2:
		d.note(fmt.Sprintf("extension token EXT_T_%d read as text", tok-tokExtT0))
		s, err = d.tableRef()
	case tok >= tokExt0 && tok <= tokExt2:
		d.note(fmt.Sprintf("extension token EXT_%d ignored: it has no meaning without its document type", tok-tokExt0))
	case tok == tokOpaque:
		var n uint32
		if n, err = d.mbUint32(); err != nil {
			return "", true, err
		}
		if int64(n) > int64(len(d.b)-d.pos) {
			return "", true, d.errf("opaque data of %d bytes but only %d bytes follow", n, len(d.b)-d.pos)
		}
		raw := d.b[d.pos : d.pos+int(n)]
		d.pos += int(n)
		if utf8.Valid(raw) && !hasControl(raw) {
			s = string(raw)
		} else {
			d.note("opaque binary data written as base64")
			s = base64.StdEncoding.EncodeToString(raw)
		}
		if d.out += len(s); d.out > d.max {
			return "", true, d.tooLarge()
		}
	default:
		return "", false, nil
	}
	return s, true, err
}

func hasControl(b []byte) bool {
	for _, c := range b {
		if c < 0x20 && c != '\n' && c != '\r' && c != '\t' {
			return true
		}
	}
	return false
}

func (d *wbxmlDecoder) note(s string) {
	for _, n := range d.doc.Notes {
		if n == s {
			return
		}
	}
	d.doc.Notes = append(d.doc.Notes, s)
}

// attrs reads attributes up to their END.
func (d *wbxmlDecoder) attrs() ([]Attr, error) {
	var out []Attr
	for {
		tok, err := d.byte()
		if err != nil {
			return nil, err
		}
		switch {
		case tok == tokEnd:
			return out, nil
		case tok == tokSwitchPage:
			if _, err := d.byte(); err != nil {
				return nil, err
			}
		case tok == tokLiteral:
			name, err := d.tableRef()
			if err != nil {
				return nil, err
			}
			out = append(out, Attr{Name: name})
		default:
			s, ok, err := d.valuePiece(tok)
			if err != nil {
				return nil, err
			}
			if !ok {
				kind := "attribute start"
				if tok >= 0x80 {
					kind = "attribute value"
				}
				return nil, d.errf("%s token 0x%02X is defined by the document type (public id %d), which this decoder does not know; only literal attributes are read", kind, tok, d.doc.PublicID)
			}
			if len(out) == 0 {
				return nil, d.errf("attribute value before any attribute name")
			}
			out[len(out)-1].Value += s
		}
	}
}

// pi reads a processing instruction after its PI token.
func (d *wbxmlDecoder) pi() (*Node, error) {
	attrs, err := d.attrs()
	if err != nil {
		return nil, err
	}
	if len(attrs) != 1 {
		return nil, d.errf("processing instruction with %d targets", len(attrs))
	}
	return &Node{Kind: PINode, Name: attrs[0].Name, Text: attrs[0].Value}, nil
}

// content reads an element's content up to its END, joining adjacent
// pieces of text into one text node.
func (d *wbxmlDecoder) content(n *Node, depth int) error {
	var text []byte
	flush := func() {
		if len(text) > 0 {
			n.Children = append(n.Children, &Node{Kind: TextNode, Text: string(text)})
			text = text[:0]
		}
	}
	for {
		tok, err := d.peek()
		if err != nil {
			return err
		}
		switch tok {
		case tokEnd:
			d.pos++
			flush()
			return nil
		case tokSwitchPage:
			d.pos++
			if _, err := d.byte(); err != nil {
				return err
			}
			continue
		case tokPI:
			d.pos++
			flush()
			pi, err := d.pi()
			if err != nil {
				return err
			}
			n.Children = append(n.Children, pi)
			continue
		}
		d.pos++
		s, ok, err := d.valuePiece(tok)
		if err != nil {
			return err
		}
		if ok {
			text = append(text, s...)
			continue
		}
		d.pos--
		flush()
		c, err := d.element(depth + 1)
		if err != nil {
			return err
		}
		n.Children = append(n.Children, c)
	}
}

// knownPrefixes are the usual prefixes of the namespaces XForms use.
var knownPrefixes = map[string]string{
	"http://openrosa.org/xforms":    "orx",
	"http://openrosa.org/javarosa":  "jr",
	"http://www.w3.org/1999/xhtml":  "h",
	"http://www.w3.org/2002/xforms": "xf",
}

// qualifyNames rewrites names of the form "URI|local", which libwbxml's
// encoder writes for namespaced attributes (expat's notation), as
// "prefix:local" and declares each prefix on the root, so the document is
// well-formed XML that means the same.
func qualifyNames(root *Node) (notes []string) {
	prefixes := map[string]string{}
	for _, a := range root.Attrs {
		if p, ok := strings.CutPrefix(a.Name, "xmlns:"); ok {
			if _, dup := prefixes[a.Value]; !dup {
				prefixes[a.Value] = p
			}
		}
	}
	used := map[string]bool{}
	for _, p := range prefixes {
		used[p] = true
	}
	var decls []Attr
	qualify := func(name string) string {
		uri, local, ok := strings.Cut(name, "|")
		if !ok || uri == "" || local == "" {
			return name
		}
		p, ok := prefixes[uri]
		if !ok {
			p = knownPrefixes[uri]
			for i := 1; p == "" || used[p]; i++ {
				p = fmt.Sprintf("ns%d", i)
			}
			prefixes[uri], used[p] = p, true
			decls = append(decls, Attr{"xmlns:" + p, uri})
		}
		return p + ":" + local
	}
	var walk func(n *Node)
	walk = func(n *Node) {
		if n.Kind != ElementNode {
			return
		}
		n.Name = qualify(n.Name)
		for i := range n.Attrs {
			n.Attrs[i].Name = qualify(n.Attrs[i].Name)
		}
		for _, c := range n.Children {
			walk(c)
		}
	}
	walk(root)
	if len(decls) > 0 {
		root.Attrs = append(root.Attrs, decls...)
		notes = append(notes, "namespaced names written as URI|name (libwbxml's notation) given prefixes")
	}
	return notes
}

// isXMLChar reports whether XML 1.0 allows r in a document.
func isXMLChar(r rune) bool {
	return r == 0x9 || r == 0xA || r == 0xD || (r >= 0x20 && r <= 0xD7FF) || (r >= 0xE000 && r <= 0xFFFD) || (r >= 0x10000 && r <= utf8.MaxRune)
}

// isQName reports whether s can be written as an element or attribute
// name: an XML name, prefix allowed.
func isQName(s string) bool {
	prefix, local, ok := strings.Cut(s, ":")
	if ok && (!isNCName(prefix) || !isNCName(local)) || !ok && !isNCName(s) {
		return false
	}
	// encoding/xml has its own (XML 1.0 Appendix B) idea of a letter:
	// ask it, so every name we write is one it reads.
	tok, err := xml.NewDecoder(strings.NewReader("<" + s + "/>")).RawToken()
	st, isStart := tok.(xml.StartElement)
	return err == nil && isStart && qname(st.Name) == s
}

// isNCName reports whether s is an XML name without a colon.
func isNCName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		ok := r == '_' || unicode.IsLetter(r) || (i > 0 && (r == '-' || r == '.' || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r)))
		if !ok {
			return false
		}
	}
	return true
}

// checkNames refuses names that no XML document could carry: the string
// table can hold any bytes.
func checkNames(n *Node) error {
	ok := map[string]bool{}
	valid := func(s string) bool {
		v, seen := ok[s]
		if !seen {
			v = isQName(s)
			ok[s] = v
		}
		return v
	}
	return checkNamesIn(n, valid)
}

func checkNamesIn(n *Node, isQName func(string) bool) error {
	if n.Kind == TextNode {
		return nil
	}
	if !isQName(n.Name) {
		return fmt.Errorf("%w: name %q is not an XML name", ErrWBXML, n.Name)
	}
	for i, a := range n.Attrs {
		if !isQName(a.Name) {
			return fmt.Errorf("%w: attribute name %q is not an XML name", ErrWBXML, a.Name)
		}
		for _, b := range n.Attrs[:i] {
			if b.Name == a.Name {
				return fmt.Errorf("%w: <%s> has attribute %q twice", ErrWBXML, n.Name, a.Name)
			}
		}
	}
	for _, c := range n.Children {
		if err := checkNamesIn(c, isQName); err != nil {
			return err
		}
	}
	return nil
}
