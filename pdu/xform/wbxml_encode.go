package xform

import (
	"bytes"
	"fmt"
	"strings"
)

// EncodeOptions shape the WBXML an encoder writes.
type EncodeOptions struct {
	// Version is the version byte: 0x01–0x03 (default 0x03, WBXML 1.3).
	Version byte
	// PublicID is the document type's public identifier (default 0x01,
	// unknown: XForms have none registered).
	PublicID uint32
}

// EncodeWBXML writes the tree rooted at root as WBXML in UTF-8. Every tag,
// attribute name and processing-instruction target goes into the string
// table once and is referenced as a literal; text and attribute values are
// inline strings.
func EncodeWBXML(root *Node, opt EncodeOptions) ([]byte, error) {
	if opt.Version == 0 {
		opt.Version = 0x03
	}
	if opt.Version > 0x03 {
		return nil, fmt.Errorf("WBXML version byte 0x%02X: want 0x01–0x03", opt.Version)
	}
	if opt.PublicID == 0 {
		opt.PublicID = PublicIDUnknown
	}
	if root == nil || root.Kind != ElementNode {
		return nil, fmt.Errorf("encode WBXML: the root must be an element")
	}
	e := &wbxmlEncoder{offsets: map[string]int{}}
	if err := e.names(root); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	out.WriteByte(opt.Version)
	out.Write(mbUint32(opt.PublicID))
	out.Write(mbUint32(CharsetUTF8))
	out.Write(mbUint32(uint32(e.table.Len())))
	out.Write(e.table.Bytes())
	if err := e.element(root); err != nil {
		return nil, err
	}
	out.Write(e.body.Bytes())
	return out.Bytes(), nil
}

type wbxmlEncoder struct {
	table   bytes.Buffer
	offsets map[string]int
	body    bytes.Buffer
}

func (e *wbxmlEncoder) name(s string) error {
	if s == "" || strings.IndexByte(s, 0) >= 0 {
		return fmt.Errorf("encode WBXML: name %q is empty or holds a NUL", s)
	}
	if _, ok := e.offsets[s]; !ok {
		e.offsets[s] = e.table.Len()
		e.table.WriteString(s)
		e.table.WriteByte(0)
	}
	return nil
}

// names fills the string table in document order.
func (e *wbxmlEncoder) names(n *Node) error {
	switch n.Kind {
	case TextNode:
		return nil
	}
	if err := e.name(n.Name); err != nil {
		return err
	}
	for _, a := range n.Attrs {
		if err := e.name(a.Name); err != nil {
			return err
		}
	}
	for _, c := range n.Children {
		if err := e.names(c); err != nil {
			return err
		}
	}
	return nil
}

func (e *wbxmlEncoder) inline(s string) error {
	if strings.IndexByte(s, 0) >= 0 {
		return fmt.Errorf("encode WBXML: text holds a NUL character")
	}
	e.body.WriteByte(tokStrI)
	e.body.WriteString(s)
	e.body.WriteByte(0)
	return nil
}

func (e *wbxmlEncoder) literal(tok byte, name string) {
	e.body.WriteByte(tok)
	e.body.Write(mbUint32(uint32(e.offsets[name])))
}

func (e *wbxmlEncoder) element(n *Node) error {
	switch n.Kind {
	case TextNode:
		if n.Text == "" {
			return nil
		}
		return e.inline(n.Text)
	case PINode:
		e.body.WriteByte(tokPI) // then the target as an attribute start
		e.literal(tokLiteral, n.Name)
		if n.Text != "" {
			if err := e.inline(n.Text); err != nil {
				return err
			}
		}
		e.body.WriteByte(tokEnd)
		return nil
	}
	tok := byte(tokLiteral)
	if len(n.Attrs) > 0 {
		tok |= flagAttrs
	}
	if len(n.Children) > 0 {
		tok |= flagContent
	}
	e.literal(tok, n.Name)
	if len(n.Attrs) > 0 {
		for _, a := range n.Attrs {
			e.literal(tokLiteral, a.Name)
			if a.Value != "" {
				if err := e.inline(a.Value); err != nil {
					return err
				}
			}
		}
		e.body.WriteByte(tokEnd)
	}
	if len(n.Children) > 0 {
		for _, c := range n.Children {
			if err := e.element(c); err != nil {
				return err
			}
		}
		e.body.WriteByte(tokEnd)
	}
	return nil
}

// mbUint32 encodes v as a WBXML multi-byte integer.
func mbUint32(v uint32) []byte {
	var tmp [5]byte
	i := len(tmp) - 1
	tmp[i] = byte(v & 0x7F)
	for v >>= 7; v > 0; v >>= 7 {
		i--
		tmp[i] = byte(v&0x7F) | 0x80
	}
	return tmp[i:]
}
