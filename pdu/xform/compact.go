package xform

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"unicode"
)

// Form describes a form that may arrive in the OpenRosa compact SMS text
// format: the prefix naming the form, then the values of its fields in
// order, separated by the delimiter ("VS#Ndiaye#Aïssatou#28"). The last
// field takes the rest of the message, delimiters included, so a free-text
// field goes last.
type Form struct {
	ID        string   // form id: the instance's root element and its id attribute
	Version   string   // written as the root's version attribute when set
	Prefix    string   // matched without regard to case
	Delimiter string   // default " "; runs of spaces count as one when it is " "
	Fields    []string // paths below the root, such as "patient/nom"
}

// ErrCompact means a text names a configured form but its values do not
// fit the form.
var ErrCompact = errors.New("compact form SMS does not fit its form")

func (f Form) delimiter() string {
	if f.Delimiter == "" {
		return " "
	}
	return f.Delimiter
}

// Validate checks a form description.
func (f Form) Validate() error {
	var errs []error
	if !isXMLName(f.ID) {
		errs = append(errs, fmt.Errorf("id %q is not an XML name", f.ID))
	}
	if strings.TrimSpace(f.Prefix) == "" {
		errs = append(errs, fmt.Errorf("prefix is empty"))
	}
	if len(f.Fields) == 0 {
		errs = append(errs, fmt.Errorf("fields is empty"))
	}
	seen := map[string]bool{}
	for _, p := range f.Fields {
		for _, seg := range strings.Split(p, "/") {
			if !isXMLName(seg) {
				errs = append(errs, fmt.Errorf("field %q: %q is not an XML name", p, seg))
				break
			}
		}
		if seen[p] {
			errs = append(errs, fmt.Errorf("field %q is listed twice", p))
		}
		seen[p] = true
	}
	return errors.Join(errs...)
}

func isXMLName(s string) bool {
	return isNCName(s) && !strings.HasPrefix(strings.ToLower(s), "xml")
}

// MatchCompact returns the form whose prefix starts text, if any.
func MatchCompact(text string, forms []Form) (Form, bool) {
	t := strings.TrimSpace(text)
	best, found := Form{}, false
	for _, f := range forms {
		p := f.Prefix
		if len(t) < len(p) || !strings.EqualFold(t[:len(p)], p) {
			continue
		}
		rest := t[len(p):]
		if rest != "" && !strings.HasPrefix(rest, f.delimiter()) && !(f.delimiter() == " " && unicode.IsSpace(rune(rest[0]))) {
			continue
		}
		if !found || len(p) > len(best.Prefix) {
			best, found = f, true
		}
	}
	return best, found
}

// DecodeCompact turns a compact form SMS into an instance. seed makes the
// instance id: the same seed gives the same id, so a message read twice
// is one submission.
func DecodeCompact(text string, f Form, seed string) (*Instance, error) {
	t := strings.TrimSpace(text)
	rest := strings.TrimSpace(t[min(len(f.Prefix), len(t)):])
	delim := f.delimiter()
	var values []string
	if delim == " " {
		values = splitSpaces(rest, len(f.Fields))
	} else {
		rest = strings.TrimPrefix(rest, delim)
		if rest != "" {
			values = strings.SplitN(rest, delim, len(f.Fields))
		}
	}
	if len(values) != len(f.Fields) {
		return nil, fmt.Errorf("%w: form %s wants %d values (%s) after %q, got %d", ErrCompact, f.ID, len(f.Fields), strings.Join(f.Fields, ", "), f.Prefix, len(values))
	}
	root := &Node{Kind: ElementNode, Name: f.ID, Attrs: []Attr{{"id", f.ID}}}
	if f.Version != "" {
		root.Attrs = append(root.Attrs, Attr{"version", f.Version})
	}
	for i, path := range f.Fields {
		n := root
		for _, seg := range strings.Split(path, "/") {
			c := n.Child(seg)
			if c == nil {
				c = &Node{Kind: ElementNode, Name: seg}
				n.Children = append(n.Children, c)
			}
			n = c
		}
		if v := strings.TrimSpace(values[i]); v != "" {
			n.Children = append(n.Children, &Node{Kind: TextNode, Text: v})
		}
	}
	sum := sha256.Sum256([]byte(f.ID + "\x00" + seed + "\x00" + t))
	sum[6] = sum[6]&0x0F | 0x80 // version 8: custom
	sum[8] = sum[8]&0x3F | 0x80 // RFC 9562 variant
	iid := fmt.Sprintf("uuid:%x-%x-%x-%x-%x", sum[0:4], sum[4:6], sum[6:8], sum[8:10], sum[10:16])
	meta := root.Child("meta")
	if meta == nil {
		meta = &Node{Kind: ElementNode, Name: "meta"}
		root.Children = append(root.Children, meta)
	}
	if meta.Child("instanceID") == nil {
		meta.Children = append(meta.Children, &Node{Kind: ElementNode, Name: "instanceID", Children: []*Node{{Kind: TextNode, Text: iid}}})
	}
	return newInstance(root, "compact", nil)
}

// splitSpaces splits s at runs of white space into at most n fields, the
// last taking the rest.
func splitSpaces(s string, n int) []string {
	var out []string
	for s != "" && len(out) < n-1 {
		i := strings.IndexFunc(s, unicode.IsSpace)
		if i < 0 {
			break
		}
		out = append(out, s[:i])
		s = strings.TrimLeftFunc(s[i:], unicode.IsSpace)
	}
	if s != "" {
		out = append(out, s)
	}
	return out
}

// DecodeText decodes a text SMS that may carry a form: an XML instance, or
// the compact format of one of opt.Forms. Anything else is ErrNotForm.
func DecodeText(text, seed string, opt Options) (*Instance, error) {
	if looksLikeXML([]byte(text)) {
		if len(text) > opt.max() {
			return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(text), opt.max())
		}
		root, err := ParseXML([]byte(text), false)
		if err != nil {
			return nil, err
		}
		return newInstance(root, "xml", nil)
	}
	if f, ok := MatchCompact(text, opt.Forms); ok {
		return DecodeCompact(text, f, seed)
	}
	return nil, ErrNotForm
}
