package email

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"html"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"regexp"
	"strings"
	"unicode/utf8"
)

// body is what a mail brings to an SMS: its text, and what was left out
// of it (attachments, quoted replies, a signature) for the history.
type body struct {
	Text    string
	Ignored []string
}

// maxDepth bounds nested multiparts.
const maxDepth = 5

// readBody finds the text of a mail: its text/plain part, or its HTML one
// turned into plain text; other parts are attachments, ignored and said
// so. The subject is not part of it.
func readBody(msg *mail.Message) (body, error) {
	var b body
	plain, htm, err := walk(textprotoHeader(msg.Header), msg.Body, 0, &b)
	if err != nil {
		return b, err
	}
	text := plain
	if text == "" && htm != "" {
		text = htmlToText(htm)
	}
	cut, what := cutReply(text)
	b.Text = cut
	b.Ignored = append(b.Ignored, what...)
	return b, nil
}

type header interface{ Get(string) string }

func textprotoHeader(h mail.Header) header { return h }

// walk reads one part (a whole mail, or a part of a multipart) and
// returns the first text/plain and text/html it holds.
func walk(h header, r io.Reader, depth int, b *body) (plain, htm string, err error) {
	ctype := h.Get("Content-Type")
	if ctype == "" {
		ctype = "text/plain; charset=us-ascii"
	}
	mt, params, perr := mime.ParseMediaType(ctype)
	if perr != nil {
		mt, params = "text/plain", map[string]string{}
	}
	disp, dparams, _ := mime.ParseMediaType(h.Get("Content-Disposition"))
	if strings.HasPrefix(mt, "multipart/") {
		if depth >= maxDepth {
			return "", "", fmt.Errorf("multipart nested more than %d deep", maxDepth)
		}
		raw, err := io.ReadAll(r)
		if err != nil {
			return "", "", fmt.Errorf("bad multipart body: %v", err)
		}
		mr := multipart.NewReader(bytes.NewReader(cleanPartHeaders(raw, params["boundary"])), params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return "", "", fmt.Errorf("bad multipart body: %v", err)
			}
			pp, ph, err := walk(p.Header, p, depth+1, b)
			if err != nil {
				return "", "", err
			}
			if plain == "" {
				plain = pp
			}
			if htm == "" {
				htm = ph
			}
		}
		return plain, htm, nil
	}
	raw, err := io.ReadAll(decoder(h.Get("Content-Transfer-Encoding"), r))
	if err != nil {
		return "", "", fmt.Errorf("bad %s body: %v", h.Get("Content-Transfer-Encoding"), err)
	}
	// Names in RFC 2231 form (filename*=) are decoded by
	// mime.ParseMediaType; most mailers send RFC 2047 encoded words in
	// quotes instead, which RFC 2231 does not allow but everyone reads.
	name := dparams["filename"]
	if name == "" {
		name = params["name"]
	}
	name = decodeWords(name)
	if disp == "attachment" || name != "" || (mt != "text/plain" && mt != "text/html") {
		if name == "" {
			name = "unnamed"
		}
		what := fmt.Sprintf("attachment %q (%s, %d bytes) ignored", name, mt, len(raw))
		if strings.ContainsRune(name, controlMark) {
			what += " (control characters in its name are shown as \ufffd)"
		}
		b.Ignored = append(b.Ignored, what)
		return "", "", nil
	}
	text, err := toUTF8(raw, params["charset"])
	if err != nil {
		return "", "", err
	}
	if mt == "text/html" {
		return "", text, nil
	}
	return text, "", nil
}

func decoder(cte string, r io.Reader) io.Reader {
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "quoted-printable":
		return quotedprintable.NewReader(r)
	case "base64":
		return base64.NewDecoder(base64.StdEncoding, &skipSpace{r: r})
	}
	return r
}

// skipSpace drops the line breaks of a base64 body.
type skipSpace struct{ r io.Reader }

func (s *skipSpace) Read(p []byte) (int, error) {
	for {
		n, err := s.r.Read(p)
		j := 0
		for _, c := range p[:n] {
			if c != '\r' && c != '\n' && c != ' ' && c != '\t' {
				p[j] = c
				j++
			}
		}
		if j > 0 || err != nil {
			return j, err
		}
	}
}

// toUTF8 decodes the charsets mail clients send text in: UTF-8 (and
// US-ASCII), and Windows-1252, which ISO-8859-1 is read as too (as
// browsers do, after the WHATWG Encoding Standard: a mail labelled
// ISO-8859-1 with a € or curly quotes in 0x80–0x9F is Windows-1252).
func toUTF8(raw []byte, charset string) (string, error) {
	switch cs := strings.ToLower(strings.TrimSpace(charset)); cs {
	case "", "utf-8", "utf8", "us-ascii", "ascii":
		if !utf8.Valid(raw) {
			if cs == "" {
				cs = "us-ascii"
			}
			return "", fmt.Errorf("the text is not valid %s (nor UTF-8): say its charset in Content-Type", cs)
		}
		return string(raw), nil
	case "iso-8859-1", "latin1", "iso_8859-1", "l1", "windows-1252", "cp1252", "x-cp1252":
		rs := make([]rune, len(raw))
		for i, c := range raw {
			rs[i] = rune(c)
			if c >= 0x80 && c < 0xa0 {
				rs[i] = cp1252[c-0x80]
			}
		}
		return string(rs), nil
	}
	return "", fmt.Errorf("charset %q is not supported: send the text as UTF-8", charset)
}

var (
	htmlDrop   = regexp.MustCompile(`(?is)<(script|style|head|blockquote)\b.*?</(script|style|head|blockquote)\s*>`)
	htmlBreak  = regexp.MustCompile(`(?i)<\s*(br|/p|/div|/li|/tr|/h[1-6])\b[^>]*>`)
	htmlTag    = regexp.MustCompile(`(?s)<[^>]*>`)
	spaces     = regexp.MustCompile(`[ \t\r\f\v]+`)
	blankLines = regexp.MustCompile(`\n{3,}`)
)

// htmlToText turns an HTML body into plain text: scripts, styles and
// quoted blocks dropped, line breaks kept, tags removed, entities decoded.
func htmlToText(s string) string {
	s = htmlDrop.ReplaceAllString(s, "")
	s = htmlBreak.ReplaceAllString(s, "\n")
	s = htmlTag.ReplaceAllString(s, "")
	s = html.UnescapeString(s)
	s = strings.ReplaceAll(s, "\u00a0", " ")
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSpace(spaces.ReplaceAllString(l, " "))
	}
	return strings.TrimSpace(blankLines.ReplaceAllString(strings.Join(lines, "\n"), "\n\n"))
}

// wrote is the line a mail client puts before the text it quotes.
var wrote = regexp.MustCompile(`(?i)^(on\s.*wrote:|-+\s*original message\s*-+|le\s.*a écrit\s?:|am\s.*schrieb.*:)$`)

// cutReply drops what an SMS does not need of a mail: the quoted text
// of a reply ("> …" lines, and everything after "On … wrote:"), and the
// signature (after a "-- " line). It says what it cut.
func cutReply(text string) (string, []string) {
	text = strings.ReplaceAll(strings.ReplaceAll(text, "\r\n", "\n"), "\r", "\n")
	var keep []string
	var cut []string
	quoted := 0
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		t := strings.TrimSpace(l)
		if l == "-- " || l == "--" {
			cut = append(cut, fmt.Sprintf("signature cut (%d lines)", len(lines)-i-1))
			break
		}
		// "On Mon, … wrote:" may be folded over two lines.
		if wrote.MatchString(t) || (i+1 < len(lines) && strings.HasPrefix(strings.ToLower(t), "on ") && wrote.MatchString(t+" "+strings.TrimSpace(lines[i+1]))) {
			cut = append(cut, fmt.Sprintf("quoted reply cut (%d lines)", len(lines)-i))
			break
		}
		if strings.HasPrefix(t, ">") {
			quoted++
			continue
		}
		keep = append(keep, strings.TrimRight(l, " \t"))
	}
	if quoted > 0 {
		cut = append(cut, fmt.Sprintf("%d quoted lines cut", quoted))
	}
	return strings.TrimSpace(blankLines.ReplaceAllString(strings.Join(keep, "\n"), "\n\n")), cut
}

// controlMark replaces a control character in a header: Go's MIME
// reader refuses a header line that holds one, which refused a whole mail
// for an attachment's file name (a mail client that let a tab-like byte
// or an escape into it); the text still goes out, the attachment is left
// out as any other, its name showing where the control character was.
const controlMark = '\uFFFD'

// cleanHeader replaces the control characters (other than tab) of one
// header line, without its line break, by controlMark.
func cleanHeader(line []byte) []byte {
	if !bytes.ContainsFunc(line, func(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f }) {
		return line
	}
	var out []byte
	for _, c := range line {
		if c < 0x20 && c != '\t' || c == 0x7f {
			out = utf8.AppendRune(out, controlMark)
			continue
		}
		out = append(out, c)
	}
	return out
}

// cleanHeaders cleans the header block at the start of raw (up to the
// first empty line): what a mail's or a part's headers hold.
func cleanHeaders(raw []byte) []byte {
	var out []byte
	for len(raw) > 0 {
		line, rest, found := bytes.Cut(raw, []byte("\n"))
		content := bytes.TrimSuffix(line, []byte("\r"))
		out = append(out, cleanHeader(content)...)
		out = append(out, line[len(content):]...)
		if found {
			out = append(out, '\n')
		}
		raw = rest
		if len(content) == 0 {
			return append(out, raw...)
		}
	}
	return out
}

// cleanPartHeaders cleans the headers of every part of a multipart body
// (the lines after each boundary, up to an empty line).
func cleanPartHeaders(body []byte, boundary string) []byte {
	if boundary == "" {
		return body
	}
	delim := []byte("--" + boundary)
	var out []byte
	for len(body) > 0 {
		line, rest, found := bytes.Cut(body, []byte("\n"))
		if found {
			line = body[:len(line)+1]
		}
		out = append(out, line...)
		body = rest
		t := bytes.TrimRight(line, " \t\r\n")
		if bytes.Equal(t, delim) {
			// The part's headers follow.
			head, n := headerBlock(body)
			out = append(out, cleanHeaders(head)...)
			body = body[n:]
		}
	}
	return out
}

// headerBlock is the header block at the start of raw, its empty line
// included, and its length.
func headerBlock(raw []byte) ([]byte, int) {
	n := 0
	for n < len(raw) {
		i := bytes.IndexByte(raw[n:], '\n')
		if i < 0 {
			return raw, len(raw)
		}
		line := bytes.TrimSuffix(raw[n:n+i], []byte("\r"))
		n += i + 1
		if len(line) == 0 {
			break
		}
	}
	return raw[:n], n
}

// parseMail reads a mail whole (at most limit bytes were read). Control
// characters in its headers are replaced (see controlMark).
func parseMail(raw []byte) (*mail.Message, error) {
	head, n := headerBlock(raw)
	raw = append(cleanHeaders(head), raw[n:]...)
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("not a mail message: %v", err)
	}
	return msg, nil
}

// cp1252 is Windows-1252's 0x80–0x9F (the five it leaves undefined are
// the C1 controls of the same value, which the router refuses).
var cp1252 = [32]rune{
	'€', 0x81, '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', 0x8d, 'Ž', 0x8f,
	0x90, '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', 0x9d, 'ž', 'Ÿ',
}
