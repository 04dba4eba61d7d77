// Package xform owns the payloads of XForm submissions that arrive by SMS:
// WAP Binary XML (WBXML 1.0–1.3) decoding and encoding, compressed
// containers (zlib, raw deflate, gzip; detected, with a hard cap on the
// decompressed size), plain XML, and the OpenRosa compact SMS text format
// for forms the configuration describes. It turns any of them into an
// instance document with its form id and instance id. It is a pure codec:
// no I/O, no state, and it imports nothing of Outpost's.
package xform

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Node kinds.
const (
	ElementNode = iota
	TextNode
	PINode // processing instruction: Name is the target, Text the data
)

// Node is one node of an XML document tree. Names keep their prefix as
// written ("orx:meta"); namespace declarations are ordinary attributes.
type Node struct {
	Kind     int
	Name     string
	Attrs    []Attr
	Text     string
	Children []*Node
}

// Attr is one attribute.
type Attr struct {
	Name, Value string
}

// Attr returns the value of the attribute called name and whether it is
// there.
func (n *Node) Attr(name string) (string, bool) {
	for _, a := range n.Attrs {
		if a.Name == name {
			return a.Value, true
		}
	}
	return "", false
}

// LocalName is a name without its prefix.
func LocalName(name string) string {
	if i := strings.LastIndexByte(name, ':'); i >= 0 {
		return name[i+1:]
	}
	return name
}

// Child returns the first child element whose local name is local.
func (n *Node) Child(local string) *Node {
	for _, c := range n.Children {
		if c.Kind == ElementNode && LocalName(c.Name) == local {
			return c
		}
	}
	return nil
}

// InnerText is the concatenated text of n and its descendants.
func (n *Node) InnerText() string {
	if n.Kind == TextNode {
		return n.Text
	}
	var b strings.Builder
	for _, c := range n.Children {
		if c.Kind != PINode {
			b.WriteString(c.InnerText())
		}
	}
	return b.String()
}

// appendText adds text to n's content, joining it with a text node just
// before it: WBXML splits one piece of text into inline strings, table
// references and entities, and XML does not see the seams.
func (n *Node) appendText(s string) {
	if k := len(n.Children); k > 0 && n.Children[k-1].Kind == TextNode {
		n.Children[k-1].Text += s
		return
	}
	n.Children = append(n.Children, &Node{Kind: TextNode, Text: s})
}

// XML writes the document rooted at n with an XML declaration and no added
// whitespace, so text comes out exactly as it is in the tree.
func (n *Node) XML() []byte {
	var b bytes.Buffer
	b.Grow(4096)
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	n.write(&b)
	return b.Bytes()
}

func (n *Node) write(b *bytes.Buffer) {
	switch n.Kind {
	case TextNode:
		escape(b, n.Text, false)
		return
	case PINode:
		b.WriteString("<?" + n.Name)
		if n.Text != "" {
			b.WriteString(" " + n.Text)
		}
		b.WriteString("?>")
		return
	}
	b.WriteString("<" + n.Name)
	for _, a := range n.Attrs {
		b.WriteString(" " + a.Name + `="`)
		escape(b, a.Value, true)
		b.WriteByte('"')
	}
	if len(n.Children) == 0 {
		b.WriteString("/>")
		return
	}
	b.WriteByte('>')
	for _, c := range n.Children {
		c.write(b)
	}
	b.WriteString("</" + n.Name + ">")
}

func escape(b *bytes.Buffer, s string, attr bool) {
	last := 0
	for i := 0; i < len(s); {
		c := s[i]
		// Most bytes need nothing: copy them in runs.
		if c >= 0x20 && c != '&' && c != '<' && c != '>' && c != '"' && c != 0xEF {
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		var rep string
		switch {
		case r == '&':
			rep = "&amp;"
		case r == '<':
			rep = "&lt;"
		case r == '>':
			rep = "&gt;"
		case attr && r == '"':
			rep = "&quot;"
		case attr && r == '\n':
			rep = "&#xA;"
		case attr && r == '\t':
			rep = "&#x9;"
		case r == '\r':
			rep = "&#xD;"
		case r < 0x20 && r != '\n' && r != '\t', r == 0xFFFE, r == 0xFFFF:
			// Not allowed in XML 1.0 even as a reference: keep it
			// visible rather than write a document no parser reads.
			rep = fmt.Sprintf("\\u%04X", r)
		default:
			i += size
			continue
		}
		b.WriteString(s[last:i])
		b.WriteString(rep)
		i += size
		last = i
	}
	b.WriteString(s[last:])
}

// ErrNotXML means the input is not a well-formed XML document.
var ErrNotXML = errors.New("not a well-formed XML document")

// maxDepth bounds element nesting in both parsers: a form is a few levels
// deep, and a hostile document must not exhaust the stack.
const maxDepth = 256

// ParseXML reads an XML document into a tree. Whitespace-only text is
// dropped unless keepSpace (it is layout, as WBXML encoders treat it);
// comments and the DOCTYPE are dropped; prefixes are kept as written.
func ParseXML(data []byte, keepSpace bool) (*Node, error) {
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	d.CharsetReader = func(label string, r io.Reader) (io.Reader, error) {
		switch strings.ToLower(label) {
		case "utf-8", "us-ascii", "ascii":
			return r, nil
		case "iso-8859-1", "latin1", "latin-1":
			raw, err := io.ReadAll(r)
			if err != nil {
				return nil, err
			}
			out := make([]byte, 0, len(raw)+len(raw)/4)
			for _, c := range raw { // each Latin-1 byte is its code point
				out = utf8.AppendRune(out, rune(c))
			}
			return bytes.NewReader(out), nil
		}
		return nil, fmt.Errorf("encoding %q not supported (use UTF-8)", label)
	}
	var root *Node
	var stack []*Node
	for {
		tok, err := d.RawToken()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrNotXML, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if root != nil && len(stack) == 0 {
				return nil, fmt.Errorf("%w: a second root element <%s>", ErrNotXML, qname(t.Name))
			}
			if len(stack) >= maxDepth {
				return nil, fmt.Errorf("%w: elements nested deeper than %d", ErrNotXML, maxDepth)
			}
			n := &Node{Kind: ElementNode, Name: qname(t.Name)}
			for _, a := range t.Attr {
				if _, dup := n.Attr(qname(a.Name)); dup {
					return nil, fmt.Errorf("%w: <%s> has attribute %q twice", ErrNotXML, n.Name, qname(a.Name))
				}
				n.Attrs = append(n.Attrs, Attr{qname(a.Name), a.Value})
			}
			if len(stack) > 0 {
				p := stack[len(stack)-1]
				p.Children = append(p.Children, n)
			} else {
				root = n
			}
			stack = append(stack, n)
		case xml.EndElement:
			if len(stack) == 0 || stack[len(stack)-1].Name != qname(t.Name) {
				return nil, fmt.Errorf("%w: unexpected </%s>", ErrNotXML, qname(t.Name))
			}
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) == 0 {
				if len(bytes.TrimSpace(t)) > 0 {
					return nil, fmt.Errorf("%w: text outside the root element", ErrNotXML)
				}
				continue
			}
			stack[len(stack)-1].appendText(string(t))
		case xml.ProcInst:
			if t.Target == "xml" {
				continue
			}
			pi := &Node{Kind: PINode, Name: t.Target, Text: strings.TrimSpace(string(t.Inst))}
			if len(stack) > 0 { // those around the root are dropped
				p := stack[len(stack)-1]
				p.Children = append(p.Children, pi)
			}
		}
	}
	if root == nil {
		return nil, fmt.Errorf("%w: no root element", ErrNotXML)
	}
	if len(stack) > 0 {
		return nil, fmt.Errorf("%w: <%s> is not closed", ErrNotXML, stack[len(stack)-1].Name)
	}
	if !keepSpace {
		root.dropSpace()
	}
	return root, nil
}

func qname(n xml.Name) string {
	if n.Space != "" {
		return n.Space + ":" + n.Local
	}
	return n.Local
}

// dropSpace removes whitespace-only text nodes below n.
func (n *Node) dropSpace() {
	kept := n.Children[:0]
	for _, c := range n.Children {
		if c.Kind == TextNode && strings.TrimSpace(c.Text) == "" {
			continue
		}
		c.dropSpace()
		kept = append(kept, c)
	}
	n.Children = kept
}

// Equal reports whether two trees are the same: names, attributes (in any
// order), text and structure.
func Equal(a, b *Node) bool {
	if a.Kind != b.Kind || a.Name != b.Name || a.Text != b.Text || len(a.Attrs) != len(b.Attrs) || len(a.Children) != len(b.Children) {
		return false
	}
	for _, x := range a.Attrs {
		if v, ok := b.Attr(x.Name); !ok || v != x.Value {
			return false
		}
	}
	for i := range a.Children {
		if !Equal(a.Children[i], b.Children[i]) {
			return false
		}
	}
	return true
}
