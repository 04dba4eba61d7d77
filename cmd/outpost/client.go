package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/outpost-sms/outpost/bridge"
	bhttp "github.com/outpost-sms/outpost/bridge/http"
	"github.com/outpost-sms/outpost/bridge/hub"
	bmqtt "github.com/outpost-sms/outpost/bridge/mqtt"
	bsms "github.com/outpost-sms/outpost/bridge/sms"
	"github.com/outpost-sms/outpost/store"
)

// client talks to the daemon's Unix socket.
type client struct {
	socket string
	http   *http.Client
}

// clientFlags adds the flags that find the daemon.
func clientFlags(fs *flag.FlagSet) func() (*client, error) {
	cfgPath := fs.String("config", "", "the daemon's config file, to find its data folder (default $OUTPOST_CONFIG, else "+systemConfig+" when present)")
	dataDir := fs.String("data-dir", "", "the daemon's data folder (default from the config, else ./outpost-data)")
	timeout := fs.Duration("timeout", 30*time.Second, "how long to wait for the daemon's answer")
	if fs.Lookup("by") == nil { // bans.go: who asks, for the audit log
		fs.StringVar(&cliByFlag, "by", "", "who asks, for the audit log (default: user and the user name)")
	}
	return func() (*client, error) {
		dir := *dataDir
		if dir == "" {
			c, err := clientConfig(*cfgPath) // discover.go
			if err != nil {
				return nil, err
			}
			dir = c.DataDir
		}
		sock := filepath.Join(dir, "outpost.sock")
		return &client{socket: sock, http: socketClient(sock, *timeout)}, nil
	}
}

// socketClient is an HTTP client whose every request goes to the
// daemon's socket sock (the host in a URL is not looked at); timeout 0
// is none.
func socketClient(sock string, timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
		MaxIdleConnsPerHost: 8,
	}}
}

var errNoDaemon = errors.New("no daemon is running")

// errNoAnswer is a daemon that took a request and did not answer in time:
// what it did with the request is unknown.
var errNoAnswer = errors.New("the daemon does not answer")

func (c *client) do(method, path string, body any, out any) error {
	var r io.Reader
	if body != nil {
		b, ok := body.([]byte) // as it is (a CSV file)
		if !ok {
			b, _ = json.Marshal(body)
		}
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, "http://outpost"+path, r)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(bhttp.ChannelHeader, "cli")
	req.Header.Set(bhttp.ByHeader, cliBy())
	resp, err := c.http.Do(req)
	if err != nil {
		return c.doErr(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		var e struct{ Error string }
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return errors.New(e.Error)
		}
		return fmt.Errorf("%s: %s", resp.Status, b)
	}
	if raw, ok := out.(*json.RawMessage); ok {
		*raw = b
		return nil
	}
	return json.Unmarshal(b, out)
}

// doErr says what a request that got no answer means.
func (c *client) doErr(err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("%w on %s within %s (it may be hung or very busy; see its log)", errNoAnswer, c.socket, c.http.Timeout)
	}
	// Only a failed dial means nothing is there: a daemon that took
	// the request and hung up (killed, crashed, stopped) may have
	// done what was asked.
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "dial" {
		return fmt.Errorf("%w: it closed the connection before answering (%v; it may have stopped or crashed: see its log)", errNoAnswer, err)
	}
	return fmt.Errorf("%w (cannot reach %s: %v)", errNoDaemon, c.socket, err)
}

func fail(cmd string, err error) int {
	fmt.Fprintf(os.Stderr, "outpost %s: %v\n", cmd, err)
	return 1
}

func cmdSend(args []string) int {
	fs := flag.NewFlagSet("send", flag.ContinueOnError)
	to := fs.String("to", "", "recipient: a phone number, e.g. +15555550100, group:NAME, or an address a configured connector delivers to (mailto:…, xmpp:…, webhook:NAME); comma-separated for several")
	text := fs.String("text", "", "message text")
	noReport := fs.Bool("no-report", false, "do not ask the network for a delivery report")
	flash := fs.Bool("flash", false, "send as a flash message (class 0)")
	validity := fs.Duration("validity", 0, "how long the SMSC keeps trying (5m to 441 days; 0: its default)")
	notBefore := fs.String("at", "", `send no earlier than this: a time ("2026-11-23T18:00:00+03:00") or a duration from now ("30m")`)
	expires := fs.String("expires", "", "do not send after this (a time or a duration from now); the SMSC's validity follows unless --validity is given")
	priority := fs.String("priority", "", "low, normal (default), high, urgent, or a number from -1 to 9: higher goes out first")
	id := fs.String("id", "", "the message's id (1-64 of A-Z a-z 0-9 . _ : -; default: a new one): the same send with the same id is stored once, so a send whose answer was lost can be run again")
	inReplyTo := fs.String("in-reply-to", "", "the id of the inbound message this answers (the only way to reach a number that opted out: its own message's id)")
	channels := fs.String("channels", "", "the channels a group of contacts is reached on: sms, email, xmpp, comma-separated (default sms)")
	modem := fs.String("modem", "", "the id of the [[modem]] the SMS must go out through (default: the gateway chooses)")
	mk := clientFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: outpost send --to NUMBER --text TEXT\n\nQueues one SMS and prints its id on the last line.")
		fs.PrintDefaults()
	}
	if _, code := parseArgs(fs, args, 0, 0); code >= 0 {
		return code
	}
	var nums []string
	for _, n := range strings.Split(*to, ",") {
		if n = strings.TrimSpace(n); n != "" {
			nums = append(nums, n)
		}
	}
	if len(nums) == 0 {
		return usageError(fs, "--to is required: a phone number such as +15555550100")
	}
	for name, v := range map[string]string{"at": *notBefore, "expires": *expires} {
		if err := checkWhen(name, v); err != nil {
			return usageError(fs, err.Error())
		}
	}
	prio, err := bridge.ParsePriority(*priority)
	if *priority != "" && err != nil {
		return usageError(fs, "--priority "+strings.TrimPrefix(err.Error(), `"priority" `))
	}
	// Each address is checked here as far as it can be; the daemon knows
	// its groups and which connectors deliver to which addresses.
	for _, n := range nums {
		if _, err := bridge.ParseAddress(n); err != nil {
			return fail("send", err)
		}
	}
	if *text == "" {
		return fail("send", errors.New("--text is empty: nothing to send"))
	}
	c, err := mk()
	if err != nil {
		return fail("send", err)
	}
	report := !*noReport
	var out bridge.SendReply
	if *id == "" {
		// Chosen here, not by the daemon: a send whose answer is lost
		// can be looked up (and run again with --id, stored once).
		*id = store.NewID()
	}
	// The request type the API parses (bridge.ParseSend).
	toJSON, _ := json.Marshal(nums)
	body := bridge.SendJSON{ID: *id, To: toJSON, Text: *text, Report: &report, Flash: *flash,
		NotBefore: *notBefore, Expires: *expires}
	if *validity != 0 {
		body.Validity = validity.String()
	}
	if *priority != "" {
		bp := bridge.Priority(prio)
		body.Priority = &bp
	}
	body.InReplyTo, body.Modem = *inReplyTo, *modem
	if *channels != "" {
		body.Channels = strings.Split(strings.ReplaceAll(*channels, " ", ""), ",")
	}
	if err := c.do("POST", "/v1/messages", body, &out); err != nil {
		if errors.Is(err, errNoAnswer) {
			err = fmt.Errorf("%v; the message may have been stored as %s: check with \"outpost show %s\", or send again with --id %s (stored once)", err, *id, *id, *id)
		}
		return fail("send", err)
	}
	for _, n := range out.Notes {
		fmt.Fprintln(os.Stderr, "note:", n)
	}
	fmt.Println(out.ID)
	return 0
}

// fetch GETs path from the daemon: with asJSON it prints the answer as it
// came and returns 0; otherwise it decodes it into v and returns -1 (go
// on). On failure it reports and returns the exit code.
func fetch(cmd string, mk func() (*client, error), path string, asJSON bool, v any) int {
	c, err := mk()
	if err != nil {
		return fail(cmd, err)
	}
	var raw json.RawMessage
	if err := c.do("GET", path, nil, &raw); err != nil {
		return fail(cmd, err)
	}
	if asJSON {
		os.Stdout.Write(raw)
		return 0
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fail(cmd, fmt.Errorf("the daemon's answer: %w", err))
	}
	return -1
}

func cmdShow(args []string) int {
	fs := flag.NewFlagSet("show", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON")
	mk := clientFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: outpost show ID [--json]")
		fs.PrintDefaults()
	}
	pos, code := parseArgs(fs, args, 1, 1)
	if code >= 0 {
		return code
	}
	id := pos[0]
	var v bridge.MessageView
	if code := fetch("show", mk, "/v1/messages/"+url.PathEscape(id), *asJSON, &v); code >= 0 {
		return code
	}
	fmt.Printf("id:        %s\ndirection: %s\npeer:      %s\nstate:     %s\n", v.ID, v.Direction, printable(v.Peer, true), v.State)
	if v.Channel != "" || v.Kind != "" {
		fmt.Printf("channel:   %s\nkind:      %s\n", printable(v.Channel, false), v.Kind)
	}
	if v.FromAddr != "" {
		fmt.Printf("from:      %s\n", printable(v.FromAddr, false))
	}
	if len(v.Tags) > 0 {
		fmt.Printf("tags:      %s\n", printable(strings.Join(v.Tags, ", "), false))
	}
	if v.Text != nil {
		fmt.Printf("text:      %s\n", indented(*v.Text))
	} else if v.DataHex != "" {
		fmt.Printf("data:      %s\n", v.DataHex)
	}
	if v.Detail != "" {
		fmt.Printf("detail:    %s\n", indented(v.Detail))
	}
	if v.Priority != 0 {
		fmt.Printf("priority:  %s\n", bridge.PriorityName(v.Priority))
	}
	if !v.NotBefore.IsZero() {
		fmt.Printf("not before: %s\n", v.NotBefore.Local().Format(time.RFC3339))
	}
	if !v.ExpiresAt.IsZero() {
		fmt.Printf("expires:   %s\n", v.ExpiresAt.Local().Format(time.RFC3339))
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "\nDESTINATION\tTO\tSTATE\tATTEMPTS\tLAST ERROR")
	for _, d := range v.Deliveries {
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\n", d.Connector, printable(d.Recipient, false), d.State, d.Attempts, printable(d.LastError, false))
	}
	// Each line of the history says which destination it is about (a
	// message to several has one "sending" per destination).
	dest := map[int64]string{}
	for _, d := range v.Deliveries {
		dest[d.ID] = strings.TrimSpace(d.Connector + " " + printable(d.Recipient, false))
	}
	fmt.Fprintln(w, "\nTIME\tSTATE\tDESTINATION\tDETAIL")
	for _, e := range v.Events {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", e.At.Local().Format("2006-01-02 15:04:05.000"), e.State, dest[e.DeliveryID], printable(e.Detail, false))
	}
	w.Flush()
	return 0
}

func cmdInbox(args []string) int {
	fs := flag.NewFlagSet("inbox", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON")
	limit := fs.Int("limit", 20, "how many messages")
	mk := clientFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: outpost inbox [--json] [--limit N]\n\nInbound messages, newest first.")
		fs.PrintDefaults()
	}
	if _, code := parseArgs(fs, args, 0, 0); code >= 0 {
		return code
	}
	var vs []bridge.MessageView
	if code := fetch("inbox", mk, fmt.Sprintf("/v1/inbox?limit=%d", *limit), *asJSON, &vs); code >= 0 {
		return code
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "RECEIVED\tFROM\tSTATE\tTEXT")
	for _, v := range vs {
		body := v.DataHex
		switch {
		case v.FormID != "":
			body = fmt.Sprintf("[form %s, instance %s] (outpost show %s --json for the XML)", v.FormID, v.InstanceID, v.ID)
		case v.Text != nil:
			body = *v.Text
		}
		if v.State == "undecodable" || v.State == "incomplete" {
			body += "  — " + v.Detail
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", v.CreatedAt.Local().Format("2006-01-02 15:04:05"), printable(v.Peer, false), v.State,
			printable(strings.ReplaceAll(body, "\n", " "), false))
	}
	w.Flush()
	return 0
}

func cmdStatus(args []string) int {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON")
	mk := clientFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: outpost status [--json]\n\nModems (identity, signal, registration, state) and queue depths.\nExits 1 when no daemon is running.")
		fs.PrintDefaults()
	}
	if _, code := parseArgs(fs, args, 0, 0); code >= 0 {
		return code
	}
	var s struct {
		GatewayID  string                     `json:"gateway_id"`
		Version    string                     `json:"version"`
		StartedAt  time.Time                  `json:"started_at"`
		Modems     map[string]json.RawMessage `json:"modems"`
		Queues     map[string]map[string]int  `json:"queues"`
		Reassembly store.Reassembly           `json:"reassembly"`
		Links      map[string]hub.LinkState   `json:"links"`
		HubQueue   store.HubStats             `json:"hub_queue"`
		Store      store.Files                `json:"store"`
		Retention  *bridge.PruneStats         `json:"retention"`
		Routing    map[string]bsms.RouteState `json:"routing"`
		Paused     []string                   `json:"paused"`
	}
	if code := fetch("status", mk, "/v1/status", *asJSON, &s); code >= 0 {
		return code
	}
	fmt.Printf("gateway %s, version %s, up since %s\n", s.GatewayID, s.Version, s.StartedAt.Local().Format(time.DateTime))
	if len(s.Paused) > 0 {
		fmt.Printf("paused: %s (outpost resume NAME)\n", strings.Join(s.Paused, ", "))
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "\nMODEM\tSTATE\tOPERATOR\tSIGNAL\tREGISTERED\tIMEI\tERROR")
	// The modems in order of id; each one's balance and routing after the
	// table, on lines of their own: a long note in a column of the table
	// would widen it and break its alignment.
	var balances []string
	for _, id := range slices.Sorted(maps.Keys(s.Modems)) {
		r := s.Modems[id]
		var m struct {
			State, Operator, IMEI, Error string
			SignalDBm                    int  `json:"signal_dbm"`
			Registered                   bool `json:"registered"`
			Paused                       bool `json:"paused"`
		}
		json.Unmarshal(r, &m)
		if m.Paused {
			m.State += " (paused)"
		}
		signal := "unknown"
		if m.SignalDBm != 0 {
			signal = fmt.Sprintf("%d dBm", m.SignalDBm)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%v\t%s\t%s\n", id, m.State, printable(m.Operator, false), signal, m.Registered,
			printable(m.IMEI, false), printable(m.Error, false))
		if b := balanceLine(r); b != "" { // ussd.go
			balances = append(balances, fmt.Sprintf("%s\tbalance %s\n", id, b))
		}
	}
	fmt.Fprintln(w)
	for _, b := range balances {
		fmt.Fprint(w, b)
	}
	routingNotes(w, s.Routing)
	fmt.Fprintln(w, "\nQUEUE\tSTATE\tCOUNT")
	for q, states := range s.Queues {
		for st, n := range states {
			fmt.Fprintf(w, "%s\t%s\t%d\n", q, st, n)
		}
	}
	w.Flush()
	printStoreAndCalls(s.Modems)
	if s.Reassembly.Messages > 0 {
		fmt.Printf("\n%d long message(s) waiting for missing parts (%d part(s) in)\n", s.Reassembly.Messages, s.Reassembly.Parts)
	}
	if l, ok := s.Links["hub"]; ok {
		state := "down"
		if l.Connected {
			state = "up"
		}

		q := s.HubQueue
		fmt.Printf("\nhub %s: %s; %d message(s) (%d bytes) queued, %d forwarded since start\n", l.URL, state, q.Messages, q.Bytes, l.Forwarded)
		if !l.Connected && !l.Since.IsZero() {
			why := ""
			if l.LastError != "" {
				why = ": " + printable(l.LastError, false)
			}
			fmt.Printf("hub link down since %s (%s)%s\n", l.Since.Local().Format(time.DateTime), time.Since(l.Since).Round(time.Second), why)
		}
		if q.Dropped+q.Expired+q.Refused > 0 {
			fmt.Printf("hub queue limits so far: %d dropped (full), %d expired (too old), %d refused (full)\n", q.Dropped, q.Expired, q.Refused)
		}
		if q.OverBound > 0 {
			fmt.Printf("%d of Outpost's own message(s) queued past the bound (never refused; only devices' messages are)\n", q.OverBound)
		}
		if q.SetAside > 0 {
			fmt.Printf("%d message(s) set aside: the hub kept refusing them (the latest %d kept); latest:\n", q.SetAside, store.MaxSetAside)
			for _, a := range q.Latest {
				fmt.Printf("  #%d %s (%d bytes), set aside %s: %s\n", a.ID, a.Topic, a.Bytes, a.SetAsideAt.Local().Format(time.DateTime), a.Reason)
			}
			if q.Requeued > 0 {
				fmt.Printf("%d of them put back in the queue (outpost hub requeue)\n", q.Requeued)
			}
		}
	}
	if r := s.Retention; r != nil {
		fmt.Printf("\nretention: messages kept %s, history %s, audit log %s; pruned since start: %d message(s), %d history entr(ies), %d audit entr(ies) in %d run(s)\n",
			r.KeepFor, r.EventsFor, r.AuditFor, r.Pruned, r.EventsGone, r.AuditGone, r.Runs)
	}
	db := s.Store
	fmt.Printf("\ndatabase: %s, WAL %s", kib(db.DBBytes), kib(db.WALBytes))
	switch ck := db.Checkpoint; {
	case ck.At.IsZero():
		fmt.Println()
	case ck.Err != "":
		fmt.Printf("; last checkpoint %s failed: %s\n", ck.At.Local().Format(time.DateTime), ck.Err)
	case ck.Busy:
		fmt.Printf("; last checkpoint %s could not finish (a long read), tried again\n", ck.At.Local().Format(time.DateTime))
	default:
		fmt.Printf("; checkpointed %s\n", ck.At.Local().Format(time.DateTime))
	}
	return 0
}

// printable escapes what a terminal would act on instead of showing: C0
// and C1 control characters (an SMS with ESC ] 0 ; … or ESC [ 2 J
// would set the operator's window title or clear the screen), DEL, and
// the Unicode marks that reorder or hide text (bidirectional overrides,
// zero-width characters). They are shown as \x1b or \u202e. With keepNL
// a newline stays a line break. --json output is never escaped.
func printable(s string, keepNL bool) string {
	clean := true
	for _, r := range s {
		if unsafeRune(r, keepNL) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case !unsafeRune(r, keepNL):
			b.WriteRune(r)
		case r < 0x100:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
	}
	return b.String()
}

// indented is printable text whose later lines are indented under the
// first, so that a text cannot fake fields of the output.
func indented(s string) string {
	return strings.ReplaceAll(printable(s, true), "\n", "\n           ")
}

func unsafeRune(r rune, keepNL bool) bool {
	switch {
	case r == '\n':
		return !keepNL
	case r < 0x20, r >= 0x7f && r < 0xa0:
		return true
	case r >= 0x200b && r <= 0x200f, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0xfeff:
		return true
	}
	return false
}

func kib(n int64) string { return fmt.Sprintf("%.0f KiB", float64(n)/1024) }

func cmdPasswd(args []string, in io.Reader, out io.Writer) int {
	fs := flag.NewFlagSet("passwd", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: outpost passwd < password\n\nReads a password (one line) from stdin and prints its bcrypt hash, for\npassword_hash in a [[mqtt.user]] of the config.")
	}
	if _, code := parseArgs(fs, args, 0, 0); code >= 0 {
		return code
	}
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && line == "" {
		return fail("passwd", errors.New("no password on stdin"))
	}
	if strings.TrimRight(line, "\r\n") == "" {
		return fail("passwd", errors.New("the password is empty"))
	}
	h, err := bmqtt.HashPassword([]byte(line))
	if err != nil {
		return fail("passwd", err)
	}
	fmt.Fprintln(out, h)
	return 0
}

// cmdManage is retry and cancel: POST /v1/messages/ID/<op>, saying who
// asks for the history.
func cmdManage(op string, args []string) int {
	fs := flag.NewFlagSet(op, flag.ContinueOnError)
	by := fs.String("by", "", "who asks, for the message's history (default: outpost "+op+" and the user name)")
	mk := clientFlags(fs)
	fs.Usage = func() {
		switch op {
		case "retry":
			fmt.Fprintln(fs.Output(), "usage: outpost retry ID [--by WHO]\n\nPuts a failed or expired message back in the queue, its attempts reset to 0\n(an expired one loses its expiry). Parts already accepted are not sent again.")
		default:
			fmt.Fprintln(fs.Output(), "usage: outpost cancel ID [--by WHO]\n\nCancels every queued or scheduled destination of a message: they are not sent\n(state cancelled, final; the history is kept). Destinations being sent right now\nfinish their attempt and are counted; cancel again after it to catch any put\nback in the queue. Nothing left to cancel exits 1 with the states counted.")
		}
		fs.PrintDefaults()
	}
	pos, code := parseArgs(fs, args, 1, 1)
	if code >= 0 {
		return code
	}
	id := pos[0]
	who := *by
	if who == "" {
		who = "outpost " + op
		who += " (user " + userName() + ")"
	}
	c, err := mk()
	if err != nil {
		return fail(op, err)
	}
	var out bridge.Managed
	if err := c.do(http.MethodPost, "/v1/messages/"+url.PathEscape(id)+"/"+op, map[string]string{"by": who}, &out); err != nil {
		return fail(op, err)
	}
	// Each destination changed (a blast may have thousands: the first
	// 20), then what was and was not changed.
	const shown = 20
	for i, d := range out.Deliveries {
		if i == shown {
			fmt.Printf("… and %d more (outpost show %s)\n", len(out.Deliveries)-shown, printable(id, false))
			break
		}
		if d.Recipient == "" {
			fmt.Printf("%s: %s\n", d.Connector, d.State)
		} else {
			fmt.Printf("%s %s: %s\n", d.Connector, printable(d.Recipient, false), d.State)
		}
	}
	fmt.Println(out.Summary)
	return 0
}

const hubUsage = `usage: outpost hub set-aside [--json]
       outpost hub requeue ID… | --all [--by WHO]

set-aside  lists the messages taken out of the hub queue because the hub kept
           refusing them (it dropped the connection on each, sent alone), newest first
requeue    puts them back at the end of the hub queue (new queue ids), the ones
           named by id (as set-aside lists them) or --all; an id that is not set
           aside fails the command and nothing moves`

// cmdHub is the hub queue's commands: set-aside, requeue.
func cmdHub(args []string) int {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help") {
		fmt.Println(hubUsage)
		return 0
	}
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "outpost hub: missing command\n"+hubUsage)
		return exitUsage
	}
	switch args[0] {
	case "set-aside":
		return cmdHubSetAside(args[1:])
	case "requeue":
		return cmdHubRequeue(args[1:])
	}
	fmt.Fprintf(os.Stderr, "outpost hub: unknown command %q\n%s\n", args[0], hubUsage)
	return exitUsage
}

func cmdHubSetAside(args []string) int {
	fs := flag.NewFlagSet("hub set-aside", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON")
	mk := clientFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: outpost hub set-aside [--json]\n\nThe messages the hub kept refusing, taken out of its queue (the newest\n1,000 are kept), newest first; outpost hub requeue puts them back.")
		fs.PrintDefaults()
	}
	if _, code := parseArgs(fs, args, 0, 0); code >= 0 {
		return code
	}
	var list []store.HubSetAside
	if code := fetch("hub set-aside", mk, "/v1/hub/set-aside", *asJSON, &list); code >= 0 {
		return code
	}
	if len(list) == 0 {
		fmt.Println("no message set aside")
		return 0
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tSET ASIDE\tBYTES\tTOPIC\tREASON")
	for _, a := range list {
		fmt.Fprintf(w, "%d\t%s\t%d\t%s\t%s\n", a.ID, a.SetAsideAt.Local().Format(time.DateTime), a.Bytes, printable(a.Topic, false), printable(a.Reason, false))
	}
	w.Flush()
	return 0
}

func cmdHubRequeue(args []string) int {
	fs := flag.NewFlagSet("hub requeue", flag.ContinueOnError)
	all := fs.Bool("all", false, "every message set aside")
	by := fs.String("by", "", "who asks, for the daemon's log (default: outpost hub requeue and the user name)")
	mk := clientFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: outpost hub requeue ID… | --all [--by WHO]\n\nPuts messages set aside (outpost hub set-aside) back at the end of the hub\nqueue, with new queue ids. An id that is not set aside fails the command and\nnothing moves. A message the hub still refuses is set aside again.")
		fs.PrintDefaults()
	}
	pos, code := parseArgs(fs, args, 0, store.MaxSetAside)
	if code >= 0 {
		return code
	}
	switch {
	case *all && len(pos) > 0:
		return usageError(fs, "IDs and --all exclude each other")
	case !*all && len(pos) == 0:
		return usageError(fs, "missing argument: the ids to requeue (as outpost hub set-aside lists them), or --all")
	}
	ids := make([]int64, 0, len(pos))
	for _, p := range pos {
		id, err := strconv.ParseInt(p, 10, 64)
		if err != nil || id <= 0 {
			return usageError(fs, fmt.Sprintf("%q is not an id: the ids are the numbers outpost hub set-aside lists", p))
		}
		ids = append(ids, id)
	}
	who := *by
	if who == "" {
		who = "outpost hub requeue (user " + userName() + ")"
	}
	c, err := mk()
	if err != nil {
		return fail("hub requeue", err)
	}
	body := map[string]any{"by": who}
	if *all {
		body["all"] = true
	} else {
		body["ids"] = ids
	}
	var out struct {
		Requeued []store.HubRequeued `json:"requeued"`
	}
	if err := c.do(http.MethodPost, "/v1/hub/set-aside/requeue", body, &out); err != nil {
		return fail("hub requeue", err)
	}
	for _, r := range out.Requeued {
		fmt.Printf("#%d %s: back in the hub queue as #%d\n", r.ID, printable(r.Topic, false), r.QueueID)
	}
	fmt.Printf("%d message(s) put back in the hub queue\n", len(out.Requeued))
	return 0
}

// userName is who runs the command, for the history: $USER, else the
// account of the process's uid (a service or sudo often has no $USER),
// else the uid.
func userName() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return fmt.Sprintf("uid %d", os.Getuid())
}
