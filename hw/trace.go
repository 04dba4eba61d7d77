package hw

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strings"
)

// traceRW logs the AT traffic on a port at LevelTrace ("w: …" for what is
// written, "r: …" for what is read) with secrets masked: the SIM PIN and
// PUK of AT+CPIN, the password of AT+CLCK and the passwords of AT+CPWD,
// on write and in the modem's echo. Reads are logged in whole lines (a
// line split across reads is held until its end, so a PIN cannot slip
// through in pieces); the "> " prompt of AT+CMGS is logged as it comes.
type traceRW struct {
	rw  io.ReadWriter
	log *slog.Logger
	on  bool
	buf []byte // read, not yet logged: the start of a line
}

func newTrace(rw io.ReadWriter, log *slog.Logger) *traceRW {
	return &traceRW{rw: rw, log: log, on: log.Enabled(context.Background(), LevelTrace)}
}

func (t *traceRW) Read(p []byte) (int, error) {
	n, err := t.rw.Read(p)
	if !t.on {
		return n, err
	}
	t.buf = append(t.buf, p[:n]...)
	end := strings.LastIndexAny(string(t.buf), "\r\n") + 1
	if err != nil || strings.HasSuffix(string(t.buf), "> ") {
		end = len(t.buf)
	}
	if end > 0 {
		t.logf("r: %q", redactAT(string(t.buf[:end])))
		t.buf = append(t.buf[:0], t.buf[end:]...)
	}
	return n, err
}

func (t *traceRW) Write(p []byte) (int, error) {
	n, err := t.rw.Write(p)
	if t.on && n > 0 {
		t.logf("w: %q", redactAT(string(p[:n])))
	}
	return n, err
}

func (t *traceRW) logf(format string, v ...any) {
	t.log.Log(context.Background(), LevelTrace, fmt.Sprintf(format, v...))
}

// secretAT finds the AT commands that carry secrets (3GPP TS 27.007):
// +CPIN=<pin>[,<newpin>], +CPIN2 likewise, +CLCK=<fac>,<mode>[,<passwd>
// [,<class>]] and +CPWD=<fac>,<oldpwd>,<newpwd>.
var secretAT = regexp.MustCompile(`(?i)\+(CPIN2?|CLCK|CPWD)=`)

// redactAT masks the secret parameters of every such command in s (one
// or more lines, commands chained with ';' too) as "****", quoted when
// they were; the other parameters are kept.
func redactAT(s string) string {
	locs := secretAT.FindAllStringSubmatchIndex(s, -1)
	if locs == nil {
		return s
	}
	var b strings.Builder
	last := 0
	for _, l := range locs {
		if l[0] < last {
			continue
		}
		b.WriteString(s[last:l[1]])
		end := l[1]
		inQuote := false
		for end < len(s) && (inQuote || !strings.ContainsRune(";\r\n", rune(s[end]))) {
			if s[end] == '"' {
				inQuote = !inQuote
			}
			end++
		}
		secret := func(i int) bool { return true } // +CPIN: every parameter
		switch strings.ToUpper(s[l[2]:l[3]]) {
		case "CLCK":
			secret = func(i int) bool { return i == 2 }
		case "CPWD":
			secret = func(i int) bool { return i >= 1 }
		}
		for i, p := range splitParams(s[l[1]:end]) {
			if i > 0 {
				b.WriteByte(',')
			}
			switch {
			case !secret(i) || strings.TrimSpace(p) == "":
				b.WriteString(p)
			case strings.HasPrefix(strings.TrimSpace(p), `"`):
				b.WriteString(`"****"`)
			default:
				b.WriteString("****")
			}
		}
		last = end
	}
	b.WriteString(s[last:])
	return b.String()
}

// splitParams splits AT parameters at the commas outside quotes.
func splitParams(s string) []string {
	var out []string
	inQuote, start := false, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			inQuote = !inQuote
		case ',':
			if !inQuote {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}
