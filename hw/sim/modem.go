package sim

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/warthog618/sms/encoding/tpdu"
	"github.com/warthog618/sms/encoding/ucs2"
)

// Slots is the number of message slots on a simulated SIM.
const Slots = 30

// SMS storage states (27.005 <stat> in PDU mode).
const (
	recUnread = 0
	recRead   = 1
	stoUnsent = 2
	stoSent   = 3
)

type slot struct {
	stat     int
	pdu      []byte // with SMSC prefix
	isReport bool
}

// Faults are injected misbehaviours of a simulated modem.
type Faults struct {
	// SendError makes AT+CMGS answer "+CMS ERROR: <code>" (0 = off).
	SendError int
	// Hang makes the modem stop answering commands.
	Hang bool
	// NoNetwork makes the modem unregistered; sends fail with +CMS ERROR: 331.
	NoNetwork bool
	// PIN, when set, locks the SIM until AT+CPIN="<PIN>".
	PIN string
	// EPSOnly makes the modem registered on LTE only: +CREG? says not
	// registered, +CEREG? registered (home), and sends work.
	EPSOnly bool
	// FailDeletes makes the next FailDeletes AT+CMGD answer "+CMS ERROR:
	// 320" (memory failure) and delete nothing; each failure counts down.
	FailDeletes  int
	Misbehaviour // faults.go
	// USSDDelay delays the network's answer to each USSD string.
	USSDDelay time.Duration
	// USSDPacked makes the modem take and give USSD strings as packed
	// GSM 7-bit hex, as Huawei's do (a string as text is an error).
	USSDPacked bool
}

// Modem is one simulated modem with its SIM. A modem keeps its SIM storage
// across sessions (Serve calls), as real hardware does across unplugging.
type Modem struct {
	net    *Network
	number string
	IMEI   string
	IMSI   string
	ICCID  string

	mu             sync.Mutex
	slots          [Slots + 1]*slot // 1-based
	pending        [][]byte         // messages the SIM had no room for
	pendingReports []bool
	faults         Faults
	unlocked       bool
	mr             byte
	sess           *session
	sessions       int
	commands       []string // every command received, for tests
	capacity       int      // SIM slots usable (0: Slots); store.go
	call           *ringing // calls.go
	calls          []CallRecord
	refuseCLIP     bool
	resets         int
	searchUntil    time.Time // searching for the network after a reset
	balance        float64   // what the balance code answers (ussd.go)
	ussdMenu       string    // the network's side of an open USSD session
	ussdLog        []string
	ussdSeq        int // moves on with every USSD string and cancel
}

func newModem(n *Network, number string) *Modem {
	d := digitsOf(number)
	for len(d) < 15 {
		d = "0" + d
	}
	return &Modem{
		net:     n,
		number:  number,
		IMEI:    "35" + d[len(d)-13:],
		IMSI:    "00101" + d[len(d)-10:],
		ICCID:   "8900101" + d[len(d)-12:] + "F",
		balance: 100,
	}
}

func digitsOf(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// Number is the modem's own number.
func (m *Modem) Number() string { return m.number }

// Faults returns the injected faults.
func (m *Modem) Faults() Faults {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.faults
}

// SetFaults replaces the injected faults.
func (m *Modem) SetFaults(f Faults) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if f.PIN != m.faults.PIN {
		m.unlocked = false
	}
	m.faults = f
}

// keepCommands bounds what Commands remembers. The daemon runs the
// simulated modem in its own process (type = "sim", the default): kept
// whole, the record of 100,000 SMS was most of its memory.
const keepCommands = 10000

// record keeps line for Commands (m.mu held): the latest keepCommands,
// copied down once twice as many are kept.
func (m *Modem) record(line string) {
	m.commands = append(m.commands, line)
	if len(m.commands) >= 2*keepCommands {
		m.commands = append([]string(nil), m.commands[len(m.commands)-keepCommands:]...)
	}
}

// Commands returns the latest AT commands received (up to
// keepCommands, and at most twice as many), with the PDU given after each
// AT+CMGS as a line of its own.
func (m *Modem) Commands() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.commands...)
}

// Stored returns how many SIM slots are in use.
func (m *Modem) Stored() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, s := range m.slots[1:] {
		if s != nil {
			n++
		}
	}
	return n
}

// Inject delivers a raw PDU (hex, with SMSC prefix) to the modem as if the
// network sent it; isReport marks a status report.
func (m *Modem) Inject(pduHex string, isReport bool) error {
	b, err := hex.DecodeString(pduHex)
	if err != nil {
		return err
	}
	m.receive(b, isReport)
	return nil
}

// receive takes a PDU from the network: straight to the terminal when
// +CNMI asks for direct delivery, else into a free SIM slot with a +CMTI
// (or +CDSI) indication.
func (m *Modem) receive(p []byte, isReport bool) {
	if p == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.sess
	if s != nil && s.direct(isReport) {
		if s.sendDirect(p, isReport) {
			return
		}
	}
	idx := m.freeSlot()
	if idx == 0 {
		m.pending = append(m.pending, p) // SIM full: the network retries later
		m.pendingReports = append(m.pendingReports, isReport)
		return
	}
	m.slots[idx] = &slot{stat: recUnread, pdu: p, isReport: isReport}
	if s != nil {
		s.notifyStored(idx, isReport)
	}
}

func (m *Modem) freeSlot() int {
	for i := 1; i <= m.slotsUsable(); i++ {
		if m.slots[i] == nil {
			return i
		}
	}
	return 0
}

// retryPending moves messages waiting for room into freed slots. Called
// with m.mu held.
func (m *Modem) retryPending() {
	for len(m.pending) > 0 {
		idx := m.freeSlot()
		if idx == 0 {
			return
		}
		p, rep := m.pending[0], m.pendingReports[0]
		m.pending, m.pendingReports = m.pending[1:], m.pendingReports[1:]
		m.slots[idx] = &slot{stat: recUnread, pdu: p, isReport: rep}
		if m.sess != nil {
			m.sess.notifyStored(idx, rep)
		}
	}
}

// Serve speaks AT on rw until rw fails or ctx ends. Only one session is
// active at a time; a new one replaces the old.
func (m *Modem) Serve(ctx context.Context, rw io.ReadWriter) error {
	s := &session{m: m, w: rw, echo: true, cmee: 0, mt: 0, ds: 0, cscs: "GSM"}
	m.mu.Lock()
	m.sess = s
	m.sessions++
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		if m.sess == s {
			m.sess = nil
		}
		// A direct delivery never acknowledged is retried by the network:
		// it lands in the SIM.
		for _, u := range s.unacked {
			if idx := m.freeSlot(); idx != 0 {
				m.slots[idx] = &slot{stat: recUnread, pdu: u.pdu, isReport: u.isReport}
			} else {
				m.pending = append(m.pending, u.pdu)
				m.pendingReports = append(m.pendingReports, u.isReport)
			}
		}
		m.mu.Unlock()
	}()
	stop := context.AfterFunc(ctx, func() {
		if c, ok := rw.(io.Closer); ok {
			c.Close()
		}
	})
	defer stop()
	return s.run(bufio.NewReader(rw))
}

// session is one AT conversation.
type session struct {
	m       *Modem
	w       io.Writer
	wmu     sync.Mutex
	echo    bool
	cmee    int
	cmgf    int
	csms    int
	mt, ds  int
	creg    int
	clip    bool // AT+CLIP=1: a +CLIP line follows each RING
	crc     bool // AT+CRC=1: +CRING: VOICE instead of RING
	cgregN  int  // +CGREG=<n>
	copsFmt int  // +COPS=3,<format>
	unacked []unacked
	cscs    string // the TE character set: GSM, IRA or UCS2
	cusdN   int
	// afterOK runs, on its own, once the command's OK is written: an
	// indication the command causes comes after it (ussd.go).
	afterOK func()
}

type unacked struct {
	pdu      []byte
	isReport bool
}

func (s *session) write(str string) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	io.WriteString(s.w, str)
}

// direct reports whether +CNMI routes this kind of message straight to the
// terminal. Called with m.mu held.
func (s *session) direct(isReport bool) bool {
	if isReport {
		return s.ds == 1
	}
	return s.mt == 2 || s.mt == 3
}

// sendDirect writes +CMT/+CDS. With +CSMS=1 the message counts as received
// only after +CNMA; at most one may be outstanding. Called with m.mu held.
func (s *session) sendDirect(p []byte, isReport bool) bool {
	if s.csms == 1 && len(s.unacked) > 0 {
		return false // the network waits for the ack: store it instead
	}
	tp := len(p) - int(p[0]) - 1
	if isReport {
		s.write(fmt.Sprintf("\r\n+CDS: %d\r\n%X\r\n", tp, p))
	} else {
		s.write(fmt.Sprintf("\r\n+CMT: ,%d\r\n%X\r\n", tp, p))
	}
	if s.csms == 1 {
		s.unacked = append(s.unacked, unacked{p, isReport})
	}
	return true
}

// notifyStored writes +CMTI/+CDSI. Called with m.mu held.
func (s *session) notifyStored(idx int, isReport bool) {
	switch {
	case isReport && s.ds == 2:
		s.write(fmt.Sprintf("\r\n+CDSI: \"SM\",%d\r\n", idx))
	case !isReport && s.mt >= 1:
		s.write(fmt.Sprintf("\r\n+CMTI: \"SM\",%d\r\n", idx))
	}
}

func (s *session) run(r *bufio.Reader) error {
	var line []byte
	for {
		c, err := r.ReadByte()
		if err != nil {
			return err
		}
		switch c {
		case '\r':
			cmd := string(line)
			line = line[:0]
			if s.echo {
				s.write(cmd + "\r")
			}
			if err := s.command(strings.TrimSpace(cmd), r); err != nil {
				return err
			}
		case '\n':
		case 0x1b: // ESC cancels the line
			line = line[:0]
		default:
			line = append(line, c)
		}
	}
}

func (s *session) ok()              { s.write("\r\nOK\r\n") }
func (s *session) info(l ...string) { s.write("\r\n" + strings.Join(l, "\r\n") + "\r\n") }

func (s *session) cmeError(code int) {
	if s.cmee == 0 {
		s.write("\r\nERROR\r\n")
		return
	}
	s.write(fmt.Sprintf("\r\n+CME ERROR: %d\r\n", code))
}

func (s *session) cmsError(code int) {
	if s.cmee == 0 {
		s.write("\r\nERROR\r\n")
		return
	}
	s.write(fmt.Sprintf("\r\n+CMS ERROR: %d\r\n", code))
}

func (s *session) command(line string, r *bufio.Reader) error {
	if line == "" {
		return nil
	}
	up := strings.ToUpper(line)
	if !strings.HasPrefix(up, "AT") {
		s.write("\r\nERROR\r\n")
		return nil
	}
	m := s.m
	m.mu.Lock()
	m.record(line)
	m.mu.Unlock()
	if s.misbehave(line) {
		return nil
	}
	body := line[2:]
	if body == "" {
		s.ok()
		return nil
	}
	// Basic commands may be chained (ATE0V1); extended ones may be
	// separated by ';'.
	for _, c := range splitCommands(body) {
		if !s.one(c, r) {
			return nil
		}
	}
	s.ok()
	if f := s.afterOK; f != nil {
		s.afterOK = nil
		go f()
	}
	return nil
}

// splitCommands splits "E0V1+CMEE=1;+CMGF=0" into its commands.
func splitCommands(body string) []string {
	var out []string
	for body != "" {
		if body[0] == '+' || body[0] == '^' || body[0] == '&' && len(body) > 1 {
			if body[0] == '&' {
				out = append(out, body[:2])
				body = body[2:]
				continue
			}
			i := strings.IndexByte(body, ';')
			if i < 0 {
				out = append(out, body)
				break
			}
			out = append(out, body[:i])
			body = body[i+1:]
			continue
		}
		if body[0] == ';' {
			body = body[1:]
			continue
		}
		// A basic command: a letter and an optional number.
		j := 1
		for j < len(body) && body[j] >= '0' && body[j] <= '9' {
			j++
		}
		out = append(out, body[:j])
		body = body[j:]
	}
	return out
}

// one runs a single command; it returns false when it already wrote the
// final result (an error, or OK after an SMS exchange).
func (s *session) one(c string, r *bufio.Reader) bool {
	m := s.m
	name, arg, op := c, "", ""
	if i := strings.IndexAny(c, "=?"); i >= 0 {
		name, op, arg = c[:i], c[i:], ""
		if strings.HasPrefix(op, "=?") {
			op = "=?"
		} else if op[0] == '=' {
			arg = c[i+1:]
			op = "="
		} else {
			op = "?"
		}
	}
	name = strings.ToUpper(name)
	m.mu.Lock()
	locked := m.faults.PIN != "" && !m.unlocked
	noNet := m.offNet()
	creg := m.cregStat()
	m.mu.Unlock()
	needsSIM := map[string]bool{"+CMGS": true, "+CMGR": true, "+CMGL": true, "+CMGD": true, "+CPMS": true, "+CIMI": true, "+CNMI": true}
	if locked && needsSIM[name] {
		s.cmeError(11) // SIM PIN required
		return false
	}
	switch name {
	case "Z", "&F":
		s.echo, s.cmee, s.mt, s.ds, s.csms, s.cmgf, s.cscs = true, 0, 0, 0, 0, 0, "GSM"
	case "E0", "E":
		s.echo = false
	case "E1":
		s.echo = true
	case "V1", "Q0", "&C1", "&D2", "X4", "S0":
	case "I", "I0":
		s.info("Outpost simulated GSM modem")
	case "+CMEE":
		if op == "?" {
			s.info(fmt.Sprintf("+CMEE: %d", s.cmee))
		} else if op == "=" {
			s.cmee, _ = strconv.Atoi(arg)
		}
	case "+CGMI", "+GMI":
		s.info("Outpost")
	case "+CGMM", "+GMM":
		s.info("SIM900")
	case "+CGMR", "+GMR":
		s.info("Revision: outpost-sim 1.0")
	case "+CGSN", "+GSN":
		s.info(m.IMEI)
	case "+CIMI":
		s.info(m.IMSI)
	case "+CCID", "+ICCID":
		s.info("+CCID: " + m.ICCID)
	case "+CPIN":
		switch op {
		case "?":
			if locked {
				s.info("+CPIN: SIM PIN")
			} else {
				s.info("+CPIN: READY")
			}
		case "=":
			m.mu.Lock()
			good := strings.Trim(arg, `"`) == m.faults.PIN
			if good {
				m.unlocked = true
			}
			m.mu.Unlock()
			if !good {
				s.cmeError(16) // incorrect password
				return false
			}
		}
	case "+CMGF":
		switch op {
		case "?":
			s.info(fmt.Sprintf("+CMGF: %d", s.cmgf))
		case "=?":
			s.info("+CMGF: (0)")
		case "=":
			if arg != "0" {
				s.cmsError(303) // text mode not supported
				return false
			}
			s.cmgf = 0
		}
	case "+CSCS":
		switch op {
		case "?":
			s.info(fmt.Sprintf(`+CSCS: "%s"`, s.cscs))
		case "=?":
			s.info(`+CSCS: ("GSM","IRA","UCS2")`)
		case "=":
			cs := strings.Trim(arg, `"`)
			// In UCS2 the name may come encoded too ("00470053004D").
			if b, err := hex.DecodeString(cs); err == nil && s.cscs == "UCS2" && len(b) > 0 {
				if r, err := ucs2.Decode(b); err == nil {
					cs = string(r)
				}
			}
			if cs != "GSM" && cs != "IRA" && cs != "UCS2" {
				s.cmeError(4)
				return false
			}
			s.cscs = cs
		}
	case "+CUSD":
		return s.cusd(op, arg)
	case "+CSMS":
		switch op {
		case "?":
			s.info(fmt.Sprintf("+CSMS: %d,1,1,1", s.csms))
		case "=?":
			s.info("+CSMS: (0,1)")
		case "=":
			s.csms, _ = strconv.Atoi(arg)
			s.info("+CSMS: 1,1,1")
		}
	case "+CPMS":
		return s.cpms(op, arg)
	case "+CNMI":
		switch op {
		case "?":
			s.info(fmt.Sprintf("+CNMI: 2,%d,0,%d,0", s.mt, s.ds))
		case "=?":
			s.info("+CNMI: (0-2),(0-3),(0,2),(0-2),(0,1)")
		case "=":
			v := atois(arg)
			for len(v) < 5 {
				v = append(v, 0)
			}
			if v[1] < 0 || v[1] > 3 || v[3] < 0 || v[3] > 2 {
				s.cmsError(303)
				return false
			}
			m.mu.Lock()
			s.mt, s.ds = v[1], v[3]
			m.mu.Unlock()
		}
	case "+CNMA":
		m.mu.Lock()
		if len(s.unacked) == 0 {
			m.mu.Unlock()
			s.cmsError(340) // no +CNMA acknowledgement expected
			return false
		}
		s.unacked = s.unacked[1:]
		m.mu.Unlock()
	case "+CSCA":
		if op == "?" {
			s.info(fmt.Sprintf(`+CSCA: "%s",145`, SMSCNumber))
		}
	case "+COPS":
		s.cops(op, arg, noNet)
	case "+CSQ":
		if noNet {
			s.info("+CSQ: 99,99")
		} else {
			s.info("+CSQ: 21,99")
		}
	case "+CEREG":
		if op == "?" {
			stat := 4
			if m.Faults().EPSOnly && !noNet {
				stat = 1
			}
			s.info(fmt.Sprintf("+CEREG: 0,%d", stat))
		}
	case "+CREG":
		switch op {
		case "?":
			stat := 1
			if m.Faults().EPSOnly && !noNet {
				stat = 0
			}
			if creg >= 0 {
				stat = creg
				m.net.log.Info("sim: registration asked: not registered, searching")
			}
			s.info(regLine("+CREG", s.creg, stat))
		case "=":
			s.creg, _ = strconv.Atoi(arg)
		}
	case "+CMGS":
		return s.cmgs(arg, r)
	case "+CMGW":
		return s.cmgw(arg, r)
	case "+CLIP", "+CRC", "H", "H0", "+CHUP":
		return s.callCommand(name, op, arg)
	case "+CMGR":
		idx, err := strconv.Atoi(arg)
		m.mu.Lock()
		if err != nil || idx < 1 || idx > Slots || m.slots[idx] == nil {
			m.mu.Unlock()
			s.cmsError(321) // invalid memory index
			return false
		}
		sl := m.slots[idx]
		out := fmt.Sprintf("+CMGR: %d,,%d\r\n%X", sl.stat, tpduLen(sl.pdu), sl.pdu)
		if sl.stat == recUnread {
			sl.stat = recRead
		}
		m.mu.Unlock()
		s.info(out)
	case "+CMGL":
		if op == "=?" {
			s.info("+CMGL: (0-4)")
			break
		}
		want := 0
		if arg != "" {
			var err error
			if want, err = strconv.Atoi(arg); err != nil || want < 0 || want > 4 {
				s.cmsError(302)
				return false
			}
		}
		var lines []string
		m.mu.Lock()
		for i := 1; i <= Slots; i++ {
			sl := m.slots[i]
			if sl == nil || (want != 4 && sl.stat != want) {
				continue
			}
			lines = append(lines, fmt.Sprintf("+CMGL: %d,%d,,%d", i, sl.stat, tpduLen(sl.pdu)), fmt.Sprintf("%X", sl.pdu))
			if sl.stat == recUnread {
				sl.stat = recRead
			}
		}
		m.mu.Unlock()
		if len(lines) > 0 {
			s.info(lines...)
		}
	case "+CMGD":
		v := atois(arg)
		if len(v) == 0 {
			s.cmsError(302)
			return false
		}
		m.mu.Lock()
		if m.faults.FailDeletes > 0 {
			m.faults.FailDeletes--
			m.mu.Unlock()
			s.cmsError(320) // memory failure
			return false
		}
		flag := 0
		if len(v) > 1 {
			flag = v[1]
		}
		if flag == 0 {
			if v[0] < 1 || v[0] > Slots {
				m.mu.Unlock()
				s.cmsError(321)
				return false
			}
			m.slots[v[0]] = nil
		} else {
			for i := 1; i <= Slots; i++ {
				if sl := m.slots[i]; sl != nil && (flag == 4 || sl.stat == recRead) {
					m.slots[i] = nil
				}
			}
		}
		m.retryPending()
		m.mu.Unlock()
	default:
		if s.network(name, op, arg, noNet) {
			break
		}
		s.cmeError(4) // operation not supported
		return false
	}
	return true
}

func (s *session) cpms(op, arg string) bool {
	m := s.m
	m.mu.Lock()
	used := 0
	for _, sl := range m.slots[1:] {
		if sl != nil {
			used++
		}
	}
	total := m.slotsUsable()
	m.mu.Unlock()
	switch op {
	case "?":
		s.info(fmt.Sprintf(`+CPMS: "SM",%d,%d,"SM",%d,%d,"SM",%d,%d`, used, total, used, total, used, total))
	case "=?":
		s.info(`+CPMS: ("SM"),("SM"),("SM")`)
	case "=":
		for _, mem := range strings.Split(arg, ",") {
			if mem = strings.Trim(strings.TrimSpace(mem), `"`); mem != "SM" && mem != "" {
				s.cmsError(302) // only SIM storage
				return false
			}
		}
		s.info(fmt.Sprintf("+CPMS: %d,%d,%d,%d,%d,%d", used, total, used, total, used, total))
	}
	return true
}

// cmgs runs the two-step SMS submit: prompt, then the PDU up to Ctrl-Z.
func (s *session) cmgs(arg string, r *bufio.Reader) bool {
	length, err := strconv.Atoi(strings.TrimSpace(arg))
	if err != nil || length < 7 || length > 164 {
		s.cmsError(304) // invalid PDU mode parameter
		return false
	}
	s.write("\r\n> ")
	var buf []byte
	for {
		c, err := r.ReadByte()
		if err != nil {
			return false
		}
		if c == 0x1b { // cancelled
			s.ok()
			return false
		}
		if c == 0x1a {
			break
		}
		if c == '\r' || c == '\n' {
			continue
		}
		buf = append(buf, c)
	}
	if s.echo {
		s.write(string(buf) + "\x1a")
	}
	s.m.mu.Lock()
	s.m.record(string(buf)) // the PDU, as the terminal sent it
	s.m.mu.Unlock()
	raw, err := hex.DecodeString(string(buf))
	if err != nil || len(raw) < 1 || int(raw[0])+1+length != len(raw) {
		s.cmsError(304)
		return false
	}
	m := s.m
	m.slowSend()
	m.mu.Lock()
	faults := m.faults
	noNet := m.offNet()
	m.mu.Unlock()
	if noNet {
		m.net.log.Info("sim: send refused", "cms_error", 331)
		s.cmsError(331) // no network service
		return false
	}
	if faults.SendError != 0 {
		m.net.log.Info("sim: send refused", "cms_error", faults.SendError)
		s.cmsError(faults.SendError)
		return false
	}
	sub := tpdu.TPDU{Direction: tpdu.MO}
	if err := sub.UnmarshalBinary(raw[int(raw[0])+1:]); err != nil || sub.SmsType() != tpdu.SmsSubmit {
		s.cmsError(304)
		return false
	}
	m.mu.Lock()
	m.mr++
	mr := m.mr
	m.mu.Unlock()
	if code := m.net.submit(m, &sub, mr); code != 0 {
		s.cmsError(code)
		return false
	}
	s.info(fmt.Sprintf("+CMGS: %d", mr))
	return true
}

func tpduLen(p []byte) int { return len(p) - int(p[0]) - 1 }

func atois(arg string) []int {
	var v []int
	for _, f := range strings.Split(arg, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			n = 0
		}
		v = append(v, n)
	}
	return v
}
