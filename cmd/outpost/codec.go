package main

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"

	"github.com/outpost-sms/outpost/pdu"
	"github.com/outpost-sms/outpost/pdu/xform"
)

// The codec commands work offline, with no daemon: they are the contract
// other tools (and people reading a modem's log) use.

const decodeUsage = `usage: outpost decode pdu HEX [--json]
       outpost decode pdu --batch --json < pdus.txt
       outpost decode join [--json] < parts.txt
       outpost decode xform FILE [--json]

Run "outpost decode KIND --help" for a kind's flags.`

func cmdDecode(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, decodeUsage)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Println(decodeUsage)
		return 0
	case "pdu":
		return cmdDecodePDU(args[1:], os.Stdin, os.Stdout)
	case "join":
		return cmdDecodeJoin(args[1:], os.Stdin, os.Stdout)
	case "xform":
		return cmdDecodeXForm(args[1:], os.Stdin, os.Stdout)
	default:
		fmt.Fprintf(os.Stderr, "outpost decode: unknown kind %q (want pdu, join or xform)\n", args[0])
		return 2
	}
}

func cmdDecodePDU(args []string, in io.Reader, out io.Writer) int {
	fs := flag.NewFlagSet("decode pdu", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON")
	batch := fs.Bool("batch", false, "read one hex PDU per line on stdin; print one JSON object per line, in order")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: outpost decode pdu HEX [--json]\n       outpost decode pdu --batch --json < pdus.txt\n\nDecodes SMS PDUs as a modem prints them (hex, SMSC address first).")
		fs.PrintDefaults()
	}
	pos, code := parseArgs(fs, args, 0, 1)
	if code >= 0 {
		return code
	}
	hexArg := ""
	if len(pos) == 1 {
		hexArg = pos[0]
	}
	if *batch {
		if hexArg != "" {
			return usageError(fs, "--batch reads stdin: give no HEX argument")
		}
		w := bufio.NewWriter(out)
		defer w.Flush()
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 64*1024), 1<<20)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" {
				continue
			}
			m, err := pdu.DecodeHex(line)
			writeDecoded(w, m, err)
		}
		if err := sc.Err(); err != nil {
			fmt.Fprintln(os.Stderr, "outpost decode pdu: reading stdin:", err)
			return 1
		}
		return 0
	}
	if hexArg == "" {
		return usageError(fs, "missing HEX (or --batch)")
	}
	m, err := pdu.DecodeHex(hexArg)
	if *asJSON {
		writeDecoded(out, m, err)
	} else if err == nil {
		printMessage(out, m)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "outpost decode pdu:", err)
		return 1
	}
	return 0
}

// writeDecoded prints one decoded PDU's JSON line, or {"error": …}.
func writeDecoded(w io.Writer, m *pdu.Message, err error) {
	var b []byte
	if err != nil {
		b, _ = json.Marshal(map[string]string{"error": err.Error()})
	} else if b, err = json.Marshal(m); err != nil {
		b, _ = json.Marshal(map[string]string{"error": err.Error()})
	}
	fmt.Fprintf(w, "%s\n", b)
}

func printMessage(w io.Writer, m *pdu.Message) {
	// Values from the PDU are shown escaped: a text or an alphanumeric
	// sender with ESC sequences or line breaks must not drive the
	// terminal or fake lines of this output.
	row := func(k string, v any) { fmt.Fprintf(w, "%-18s %s\n", k+":", printable(fmt.Sprint(v), false)) }
	row("type", m.Type)
	if m.SMSC != "" {
		row("smsc", m.SMSC)
	}
	row("number", m.Number)
	if !m.Timestamp.IsZero() {
		row("timestamp", m.Timestamp.Format("2006-01-02 15:04:05 -07:00"))
	}
	if m.Type == pdu.StatusReport {
		row("reference", m.MessageReference)
		row("status", fmt.Sprintf("%d (%s)", m.Status, pdu.StatusText(m.Status)))
		if !m.DischargeTime.IsZero() {
			row("discharge time", m.DischargeTime.Format("2006-01-02 15:04:05 -07:00"))
		}
		return
	}
	row("coding", m.Coding)
	if m.Class >= 0 {
		row("class", m.Class)
	}
	if u := m.UDH; u != nil {
		row("header", u.Hex)
		if c := u.Concat; c != nil {
			row("part", fmt.Sprintf("%d of %d (reference %d, %d-bit)", c.Seq, c.Total, c.Ref, c.RefBits))
		}
		if p := u.Ports; p != nil {
			row("ports", fmt.Sprintf("to %d from %d (%d-bit)", p.Dst, p.Src, p.Bits))
		}
	}
	for _, q := range m.Quirks {
		row("quirk", q)
	}
	if m.IsText {
		row("text", m.Text)
	} else {
		row("data", strings.ToUpper(hex.EncodeToString(m.Data)))
	}
}

func cmdDecodeJoin(args []string, in io.Reader, out io.Writer) int {
	fs := flag.NewFlagSet("decode join", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: outpost decode join [--json] < parts.txt\n\nJoins the PDUs of one long message (one hex PDU per line, any order).")
		fs.PrintDefaults()
	}
	if _, code := parseArgs(fs, args, 0, 0); code >= 0 {
		return code
	}
	fail := func(err error) int {
		if *asJSON {
			b, _ := json.Marshal(map[string]string{"error": err.Error()})
			fmt.Fprintf(out, "%s\n", b)
		}
		fmt.Fprintln(os.Stderr, "outpost decode join:", err)
		return 1
	}
	var parts []*pdu.Message
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		m, err := pdu.DecodeHex(line)
		if err != nil {
			return fail(fmt.Errorf("line %d: %w", n, err))
		}
		parts = append(parts, m)
	}
	if err := sc.Err(); err != nil {
		return fail(err)
	}
	j, err := pdu.Join(parts)
	if err != nil {
		return fail(err)
	}
	res := map[string]any{"parts": j.Parts, "coding": j.Coding}
	if j.IsText {
		res["text"] = j.Text
	} else {
		res["data_hex"] = strings.ToUpper(hex.EncodeToString(j.Data))
	}
	if len(j.Missing) > 0 {
		res["missing"] = j.Missing
	}
	if *asJSON {
		b, _ := json.Marshal(res)
		fmt.Fprintf(out, "%s\n", b)
		return 0
	}
	if j.IsText {
		fmt.Fprintln(out, printable(j.Text, true))
	} else {
		fmt.Fprintln(out, res["data_hex"])
	}
	if len(j.Missing) > 0 {
		fmt.Fprintf(os.Stderr, "outpost decode join: parts %v never given\n", j.Missing)
	}
	return 0
}

const encodeUsage = `usage: outpost encode sms --to NUMBER --text TEXT [--json]
       outpost encode sms --to NUMBER --data-hex HEX [--port P] [--json]
       outpost encode xform FILE.xml [--hex] [--compress zlib|deflate|gzip]

Run "outpost encode KIND --help" for a kind's flags.`

func cmdEncode(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, encodeUsage)
		return exitUsage
	}
	switch args[0] {
	case "sms":
		return cmdEncodeSMS(args[1:], os.Stdout)
	case "xform":
		return cmdEncodeXForm(args[1:], os.Stdin, os.Stdout)
	case "-h", "-help", "--help", "help":
		fmt.Println(encodeUsage)
		return 0
	}
	fmt.Fprintf(os.Stderr, "outpost encode: unknown kind %q (want sms or xform)\n%s\n", args[0], encodeUsage)
	return exitUsage
}

// randomRefs starts concatenation references at a random value, as the
// daemon's persisted counter would be somewhere.
type randomRefs struct{ n int }

func (r *randomRefs) NextConcatRef() (int, error) {
	if r.n == 0 {
		r.n = 1 + rand.IntN(255)
	}
	return r.n, nil
}

func cmdEncodeSMS(args []string, out io.Writer) int {
	fs := flag.NewFlagSet("encode sms", flag.ContinueOnError)
	to := fs.String("to", "", "recipient phone number")
	text := fs.String("text", "", "message text")
	dataHex := fs.String("data-hex", "", "8-bit payload in hex, instead of --text")
	report := fs.Bool("report", true, "request a status report")
	flash := fs.Bool("flash", false, "flash message (class 0)")
	asJSON := fs.Bool("json", false, "print JSON")
	validity := fs.Duration("validity", 0, "validity period (5m to 441 days; 0: the SMSC's default)")
	port := fs.Int("port", -1, "destination application port for --data-hex (16-bit ports; source port 0)")
	language := fs.String("language", "", "national language tables the text may use (turkish, hindi, …)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: outpost encode sms --to NUMBER --text TEXT [--json]\n\nPrints the SMS-SUBMIT PDUs Outpost would send, one per line, as AT+CMGS takes them.")
		fs.PrintDefaults()
	}
	if _, code := parseArgs(fs, args, 0, 0); code >= 0 {
		return code
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch {
	case *to == "":
		return usageError(fs, "--to is required")
	case set["text"] && set["data-hex"]:
		return usageError(fs, "--text and --data-hex exclude each other: a message is text or 8-bit data")
	case set["port"] && !set["data-hex"]:
		return usageError(fs, "--port goes with --data-hex (application ports are for 8-bit data)")
	case set["language"] && set["data-hex"]:
		return usageError(fs, "--language is for --text (8-bit data has no alphabet)")
	}
	o := pdu.Outgoing{To: *to, Text: *text, Report: *report, Flash: *flash, Validity: *validity}
	if *language != "" {
		nli, err := pdu.Language(*language)
		if err != nil {
			fmt.Fprintln(os.Stderr, "outpost encode sms:", err)
			return 2
		}
		o.Languages = []int{nli}
	}
	if *port >= 0 {
		o.Ports = &pdu.Ports{Dst: *port}
	}
	if *dataHex != "" {
		d, err := hex.DecodeString(*dataHex)
		if err != nil {
			fmt.Fprintln(os.Stderr, "outpost encode sms: --data-hex is not hex:", err)
			return 1
		}
		o.Data, o.Text = d, ""
	}
	enc := pdu.Encoder{Refs: &randomRefs{}}
	parts, err := enc.Encode(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "outpost encode sms:", err)
		return 1
	}
	for _, p := range parts {
		if *asJSON {
			b, _ := json.Marshal(map[string]any{"seq": p.Seq, "total": p.Total, "pdu": p.Hex(), "cmgs_length": len(p.TPDU)})
			fmt.Fprintf(out, "%s\n", b)
		} else {
			fmt.Fprintln(out, p.Hex())
		}
	}
	return 0
}

// parseFileArgs parses the flags of a command that takes one FILE ("-"
// for stdin) before or after them, and reads it. code is the exit code
// when the command must stop, or -1.
func parseFileArgs(fs *flag.FlagSet, args []string, stdin io.Reader) (file string, b []byte, code int) {
	pos, code := parseArgs(fs, args, 1, 1)
	if code >= 0 {
		return "", nil, code
	}
	file = pos[0]
	var err error
	if file == "-" {
		b, err = io.ReadAll(stdin)
	} else {
		b, err = os.ReadFile(file)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "outpost %s: %v\n", fs.Name(), err)
		return "", nil, 1
	}
	return file, b, -1
}

func cmdDecodeXForm(args []string, in io.Reader, out io.Writer) int {
	fs := flag.NewFlagSet("decode xform", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON: form_id, instance_id, format, compression, notes, xml")
	maxSize := fs.Int("max-size", xform.DefaultMaxSize, "refuse payloads that decompress or decode to more bytes than this")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: outpost decode xform FILE [--json]\n\nDecodes an XForm payload (WBXML or XML; zlib, raw deflate, gzip or none;\nFILE - reads stdin) and prints the instance XML.")
		fs.PrintDefaults()
	}
	file, b, code := parseFileArgs(fs, args, in)
	if code >= 0 {
		return code
	}
	inst, err := xform.Decode(b, xform.Options{MaxSize: *maxSize})
	if err != nil {
		fmt.Fprintf(os.Stderr, "outpost decode xform: %s: %v\n", file, err)
		return 1
	}
	if *asJSON {
		notes := inst.Notes
		if notes == nil {
			notes = []string{}
		}
		j, _ := json.Marshal(map[string]any{"form_id": inst.FormID, "instance_id": inst.InstanceID, "version": inst.Version,
			"format": inst.Format, "compression": inst.Compression, "notes": notes, "xml": string(inst.XML)})
		fmt.Fprintf(out, "%s\n", j)
		return 0
	}
	out.Write(inst.XML)
	fmt.Fprintln(out)
	for _, n := range inst.Notes {
		fmt.Fprintln(os.Stderr, "note:", n)
	}
	return 0
}

func cmdEncodeXForm(args []string, in io.Reader, out io.Writer) int {
	fs := flag.NewFlagSet("encode xform", flag.ContinueOnError)
	version := fs.String("version", "1.3", "WBXML version: 1.1, 1.2 or 1.3")
	compress := fs.String("compress", "", "wrap in zlib, deflate or gzip")
	asHex := fs.Bool("hex", false, "print hex instead of raw bytes")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: outpost encode xform FILE.xml [--hex] [--compress zlib|deflate|gzip]\n\nEncodes an XML document as WBXML (literal tags, UTF-8, public id 0x01) and writes it to stdout.")
		fs.PrintDefaults()
	}
	file, src, code := parseFileArgs(fs, args, in)
	if code >= 0 {
		return code
	}
	v := map[string]byte{"1.1": 1, "1.2": 2, "1.3": 3}[*version]
	if v == 0 {
		fmt.Fprintf(os.Stderr, "outpost encode xform: --version %q: want 1.1, 1.2 or 1.3\n", *version)
		return 2
	}
	tree, err := xform.ParseXML(src, false)
	if err != nil {
		fmt.Fprintf(os.Stderr, "outpost encode xform: %s: %v\n", file, err)
		return 1
	}
	b, err := xform.EncodeWBXML(tree, xform.EncodeOptions{Version: v})
	if err == nil && *compress != "" {
		b, err = xform.Compress(b, *compress)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "outpost encode xform:", err)
		return 1
	}
	if *asHex {
		fmt.Fprintf(out, "%X\n", b)
		return 0
	}
	out.Write(b)
	return 0
}
