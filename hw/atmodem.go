package hw

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warthog618/modem/at"
)

// LevelTrace is the slog level of AT wire traffic.
const LevelTrace = slog.Level(-8)

// Config configures one supervised AT modem.
type Config struct {
	ID     string
	Device string // for status and logs
	// Open opens the port. It is called again after every disconnect.
	Open func() (io.ReadWriteCloser, error)
	PIN  string
	// Direct asks for +CMT/+CDS delivery acknowledged with +CNMA
	// (+CSMS=1) instead of storing on the SIM.
	Direct         bool
	CommandTimeout time.Duration
	SendTimeout    time.Duration
	SweepInterval  time.Duration
	StatusInterval time.Duration
	// RegistrationPoll is how often registration is read while the modem
	// is not registered (default 1s), so sending resumes soon after the
	// network is back.
	RegistrationPoll time.Duration
	BackoffMin       time.Duration
	BackoffMax       time.Duration
	Log              *slog.Logger
	// OnStatus is called (from the supervisor goroutine) whenever the
	// status changes. It must not block.
	OnStatus func(Status)
	// Calls says what to do with incoming voice calls (calls.go).
	Calls CallConfig
	// StorageWarn is the use of the message store, in percent, from
	// which the status warns that it fills up (default 80).
	StorageWarn int
	// Heal configures the resets of a hung modem (heal.go).
	Heal Heal
	// USSDTimeout bounds the wait for each screen of a USSD session
	// (default 30s).
	USSDTimeout time.Duration
}

// ATModem is a Modem on a serial line, supervised: it reconnects by itself
// until closed.
type ATModem struct {
	cfg      Config
	log      *slog.Logger
	incoming chan Inbound
	cancel   context.CancelFunc
	done     chan struct{}
	ussdMu   chan struct{} // one USSD session at a time (ussd.go)

	mu       sync.Mutex
	cur      *conn
	status   Status
	inflight map[int]bool // SIM slots handed up, not yet acked
	// deleted is, per slot, the hash of the message last deleted from
	// it. A read of the slot that gives those bytes may be stale (done
	// before the delete, handed up after it): an Ack of it would delete
	// whatever the slot holds now, unread. Such a read is not handed
	// up; the slot is read again.
	deleted map[int][sha256.Size]byte
	// releasedCalls are calls handed up but not committed.
	releasedCalls []Call

	// work runs on the supervisor goroutine in the current session
	// (post); calls and store belong to that goroutine.
	work             chan func(context.Context, *conn) error
	calls            callState
	store            storageState
	storeCheckQueued atomic.Bool

	// heal.go's state (under mu)
	hungStreak int
	rung       int
	resetTimes []time.Time
}

// conn is one open connection to the modem.
type conn struct {
	id     uint64
	port   io.ReadWriteCloser
	at     *at.AT
	direct bool
	events chan event
	// sweepSoon asks the session for a sweep: indications that found
	// events full (onStored).
	sweepSoon chan struct{}
	hung      chan struct{}
	once      sync.Once
	ussd      *ussdConn
}

func (c *conn) markHung() { c.once.Do(func() { close(c.hung) }) }

type event struct {
	slot   int
	report bool
	pdu    []byte // direct deliveries
}

// Start begins supervising the modem. It returns at once; the modem
// connects in the background.
func Start(cfg Config) *ATModem {
	if cfg.CommandTimeout == 0 {
		cfg.CommandTimeout = 10 * time.Second
	}
	if cfg.SendTimeout == 0 {
		cfg.SendTimeout = 90 * time.Second
	}
	if cfg.SweepInterval == 0 {
		cfg.SweepInterval = time.Minute
	}
	if cfg.StatusInterval == 0 {
		cfg.StatusInterval = 30 * time.Second
	}
	if cfg.RegistrationPoll == 0 {
		cfg.RegistrationPoll = time.Second
	}
	if cfg.BackoffMin == 0 {
		cfg.BackoffMin = 500 * time.Millisecond
	}
	if cfg.BackoffMax == 0 {
		cfg.BackoffMax = 30 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	cfg.Calls.defaults()
	if cfg.StorageWarn <= 0 {
		cfg.StorageWarn = 80
	}
	cfg.Heal.defaults()
	ctx, cancel := context.WithCancel(context.Background())
	m := &ATModem{
		cfg:      cfg,
		log:      cfg.Log.With("modem", cfg.ID),
		incoming: make(chan Inbound),
		cancel:   cancel,
		done:     make(chan struct{}),
		ussdMu:   make(chan struct{}, 1),
		status:   Status{ID: cfg.ID, Device: cfg.Device, State: StateConnecting, Signal: 99, Since: time.Now()},
		inflight: map[int]bool{},
		deleted:  map[int][sha256.Size]byte{},
		work:     make(chan func(context.Context, *conn) error, 32),
	}
	go m.supervise(ctx)
	return m
}

// Incoming implements Modem.
func (m *ATModem) Incoming() <-chan Inbound { return m.incoming }

// Done implements Modem.
func (m *ATModem) Done() <-chan struct{} { return m.done }

// Close stops the supervisor and closes the port. It is idempotent.
func (m *ATModem) Close() error {
	m.cancel()
	<-m.done
	return nil
}

// Status implements Modem.
func (m *ATModem) Status(ctx context.Context) (Status, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.status, nil
}

func (m *ATModem) setStatus(f func(*Status)) {
	m.mu.Lock()
	before := m.status
	f(&m.status)
	after := m.status
	m.mu.Unlock()
	if after != before && m.cfg.OnStatus != nil {
		m.cfg.OnStatus(after)
	}
}

// device is the path of the port the modem is on (or was on last).
func (m *ATModem) device() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.status.Device
}

func (m *ATModem) current() *conn {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cur
}

// command runs one AT command on the current connection. A timeout marks
// the connection hung, which makes the supervisor reconnect.
func (m *ATModem) command(c *conn, cmd string, timeout time.Duration) ([]string, error) {
	select {
	case <-c.hung:
		// One command went unanswered: the next would wait its whole
		// timeout too, and the supervisor is about to reconnect.
		return nil, fmt.Errorf("AT%s: not sent, the modem stopped answering: %w", redactAT(cmd), ErrNotReady)
	default:
	}
	info, err := c.at.Command(cmd, at.WithTimeout(timeout))
	return dropCallURCs(cmd, info), m.atError(c, "AT"+cmd, err)
}

// atError says what went wrong with cmd; a secret in cmd (the PIN) is
// masked, since the error ends up in logs and in the modem's status.
func (m *ATModem) atError(c *conn, cmd string, err error) error {
	cmd = redactAT(cmd)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, at.ErrDeadlineExceeded):
		c.markHung()
		return fmt.Errorf("%s: no answer: %w", cmd, ErrNotReady)
	case errors.Is(err, at.ErrClosed), errors.Is(err, errPortClosed):
		// errPortClosed: the supervisor closed the port (a hung modem)
		// while the command was being written (serial.go); the modem,
		// not the message, failed, so the part goes to another modem.
		return fmt.Errorf("%s: port closed (modem unplugged?): %w", cmd, ErrNotReady)
	}
	var cms at.CMSError
	if errors.As(err, &cms) {
		code, _ := strconv.Atoi(string(cms))
		m.storeError(code)
		return fmt.Errorf("%s: %w", cmd, &CMSError{Code: code, Text: cmsText[code]})
	}
	var cme at.CMEError
	if errors.As(err, &cme) {
		code, _ := strconv.Atoi(string(cme))
		return fmt.Errorf("%s: %w", cmd, &CMEError{Code: code, Text: cmeText[code]})
	}
	return fmt.Errorf("%s: %w", cmd, err)
}

// SendPDU implements Modem.
func (m *ATModem) SendPDU(ctx context.Context, tpdu []byte) (int, error) {
	c := m.current()
	if c == nil {
		return 0, ErrNotReady
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	pduHex := "00" + strings.ToUpper(hex.EncodeToString(tpdu))
	info, err := c.at.SMSCommand(fmt.Sprintf("+CMGS=%d", len(tpdu)), pduHex, at.WithTimeout(m.cfg.SendTimeout))
	if err := m.atError(c, "AT+CMGS", err); err != nil {
		var cms *CMSError
		if errors.As(err, &cms) && Classify(err) == Outage {
			// Registration is read every StatusInterval: read it now, so
			// the status and the dispatcher see at once that the network
			// is gone.
			m.refreshStatus(c)
		}
		return 0, err
	}
	for _, l := range info {
		if v, ok := strings.CutPrefix(l, "+CMGS:"); ok {
			mr, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(v, ",", 2)[0]))
			if err != nil {
				return 0, fmt.Errorf("AT+CMGS: bad reference in %q", l)
			}
			m.healthy()
			return mr, nil
		}
	}
	return 0, fmt.Errorf("AT+CMGS: no +CMGS reference in answer %q", info)
}

// Ack implements Modem: AT+CMGD for a stored message, AT+CNMA for a direct
// one (on the connection it came from; after a reconnect the network
// delivers it again, and the caller's de-duplication absorbs it).
func (m *ATModem) Ack(ctx context.Context, in Inbound) error {
	if in.Call != nil {
		return nil // committed: nothing on the modem to delete
	}
	c := m.current()
	if c == nil {
		return ErrNotReady
	}
	if in.Direct {
		if !c.direct || in.conn != c.id {
			return nil
		}
		_, err := m.command(c, "+CNMA", m.cfg.CommandTimeout)
		return err
	}
	_, err := m.command(c, fmt.Sprintf("+CMGD=%d", in.Slot), m.cfg.CommandTimeout)
	var cms *CMSError
	if err == nil || errors.As(err, &cms) && cms.Code == 321 {
		m.mu.Lock()
		m.deleted[in.Slot] = sha256.Sum256(in.PDU)
		m.mu.Unlock()
	}
	// Done or not, the slot is no longer in flight: a message still on
	// the SIM is handed up again by the next sweep (the caller's
	// de-duplication recognises it) and deleted then.
	m.Release(in)
	if err != nil && !(errors.As(err, &cms) && cms.Code == 321) {
		// What is left of it fills the store: look at it soon.
		m.requestStorageCheck()
		return err
	}
	if st, _ := m.Status(ctx); st.Storage.Full || st.Storage.Warning != "" || in.fromClear {
		if in.fromClear && err == nil {
			m.setStatus(func(s *Status) { s.Storage.Cleared++ })
		}
		m.requestStorageCheck()
	}
	return nil
}

// Release implements Modem.
func (m *ATModem) Release(in Inbound) {
	if in.Call != nil {
		m.mu.Lock()
		m.releasedCalls = append(m.releasedCalls, *in.Call)
		m.mu.Unlock()
		return
	}
	if in.Direct {
		return // not acknowledged: the network delivers it again
	}
	m.mu.Lock()
	if m.cur != nil && in.conn == m.cur.id {
		delete(m.inflight, in.Slot)
	}
	m.mu.Unlock()
}

func (m *ATModem) supervise(ctx context.Context) {
	defer close(m.done)
	defer close(m.incoming)
	backoff := m.cfg.BackoffMin
	var id uint64
	for ctx.Err() == nil {
		id++
		ready, err := m.session(ctx, id)
		if ready {
			backoff = m.cfg.BackoffMin
		}
		if ctx.Err() != nil {
			break
		}
		m.afterSession(ctx, err)
		if ctx.Err() != nil {
			break
		}
		if note := PortNote(m.cfg.Heal.Proc, m.device()); note != "" {
			err = fmt.Errorf("%w (%s)", err, note)
		}
		var perm *permanentError
		if errors.As(err, &perm) {
			m.log.Error("modem failed; not retrying", "err", err)
			m.setStatus(func(s *Status) { s.State, s.Error, s.Since = StateFailed, err.Error(), time.Now() })
			<-ctx.Done()
			break
		}
		m.log.Warn("modem disconnected", "err", err, "retry_in", backoff.String())
		m.setStatus(func(s *Status) {
			s.State, s.Error, s.Since, s.Registered, s.Signal, s.SignalDBm = StateDisconnected, err.Error(), time.Now(), false, 99, 0
		})
		// Full jitter on the upper half keeps a fleet from reconnecting in step.
		wait := backoff/2 + time.Duration(rand.Int64N(int64(backoff/2)+1))
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		backoff = min(backoff*2, m.cfg.BackoffMax)
	}
	m.setStatus(func(s *Status) { s.State, s.Since = StateDisconnected, time.Now() })
}

type permanentError struct{ err error }

// refusedForGood wraps err (of a command the modem must support) in
// format, as a permanent error only when the modem answered it with an
// error: a port that closed or a modem that did not answer (unplugged,
// hung, busy) says nothing about what it supports, and is retried.
func refusedForGood(err error, format string) error {
	err = fmt.Errorf(format, err)
	if errors.Is(err, ErrNotReady) {
		return err
	}
	return &permanentError{err}
}

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// session opens, initialises and serves one connection until it breaks.
// ready reports whether the modem got as far as being ready.
func (m *ATModem) session(ctx context.Context, id uint64) (ready bool, err error) {
	m.setStatus(func(s *Status) { s.State, s.Since = StateConnecting, time.Now() })
	port, err := m.cfg.Open()
	if err != nil {
		if m.cfg.Device == "" {
			return false, err // a scan (scan.go) says what it looked at
		}
		return false, fmt.Errorf("open %s: %w", m.cfg.Device, err)
	}
	if p, ok := port.(interface{ Device() string }); ok {
		// Found by identity (scan.go): wherever it is this time.
		m.setStatus(func(s *Status) { s.Device = p.Device() })
	}
	c := &conn{id: id, port: port, events: make(chan event, 64), sweepSoon: make(chan struct{}, 1), hung: make(chan struct{}), ussd: &ussdConn{replies: make(chan USSDReply, 4)}}
	c.at = at.New(newCUSDLines(newTrace(port, m.log)), at.WithTimeout(m.cfg.CommandTimeout))
	defer func() {
		select {
		case <-c.hung:
			err = errHung{err}
		default:
		}
		m.mu.Lock()
		if m.cur == c {
			m.cur = nil
		}
		m.inflight = map[int]bool{}
		m.mu.Unlock()
		port.Close()
		<-c.at.Closed()
	}()
	// Close the port as soon as the context ends, so blocked commands return.
	stop := context.AfterFunc(ctx, func() { port.Close() })
	defer stop()

	if err := m.init(c); err != nil {
		return false, err
	}
	m.mu.Lock()
	m.cur = c
	m.mu.Unlock()
	m.refreshStatus(c)
	m.setStatus(func(s *Status) {
		s.State, s.Error, s.Since = StateReady, "", time.Now()
		if id > 1 {
			s.Reconnects++
		}
	})
	m.log.Info("modem ready", "device", m.device())
	m.mu.Lock()
	m.rung = 0 // it answered again: a new hang starts the ladder over
	m.mu.Unlock()
	ready = true

	if err := m.sweep(ctx, c); err != nil {
		return ready, err
	}
	sweep := time.NewTicker(m.cfg.SweepInterval)
	defer sweep.Stop()
	status := time.NewTicker(m.cfg.StatusInterval)
	defer status.Stop()
	reg := time.NewTicker(m.cfg.RegistrationPoll)
	defer reg.Stop()
	for {
		select {
		case <-ctx.Done():
			return ready, ctx.Err()
		case <-c.at.Closed():
			return ready, errors.New("connection closed (unplugged?)")
		case <-c.hung:
			return ready, errors.New("modem stopped answering")
		case ev := <-c.events:
			if err := m.handleEvent(ctx, c, ev); err != nil {
				return ready, err
			}
		case f := <-m.work:
			if err := f(ctx, c); err != nil {
				return ready, err
			}
		case <-sweep.C:
			if err := m.sweep(ctx, c); err != nil {
				return ready, err
			}
		case <-c.sweepSoon:
			if err := m.sweep(ctx, c); err != nil {
				return ready, err
			}
		case <-status.C:
			m.refreshStatus(c)
		case <-reg.C:
			if st, _ := m.Status(ctx); !st.CanSend() {
				m.refreshStatus(c)
			}
		}
	}
}

func (m *ATModem) init(c *conn) error {
	// Escape a half-typed SMS and flush, as at.Init does, then our own set.
	c.at.Escape([]byte("\r\n")...)
	basic := []string{"E0", "+CMEE=1"}
	for _, cmd := range basic {
		if _, err := m.command(c, cmd, m.cfg.CommandTimeout); err != nil {
			return fmt.Errorf("init: %w", err)
		}
	}
	if err := m.unlock(c); err != nil {
		return err
	}
	if _, err := m.command(c, "+CMGF=0", m.cfg.CommandTimeout); err != nil {
		return refusedForGood(err, "init: PDU mode not supported: %w")
	}
	// Prefer the SIM for everything; some modems only offer ME.
	if _, err := m.command(c, `+CPMS="SM","SM","SM"`, m.cfg.CommandTimeout); err != nil {
		if _, err2 := m.command(c, `+CPMS="ME","ME","ME"`, m.cfg.CommandTimeout); err2 != nil {
			m.log.Warn("cannot select message storage; using the modem's default", "err", err)
		}
	}
	for _, ind := range []struct {
		prefix string
		lines  int
		h      func([]string)
	}{
		{"+CMTI:", 0, func(l []string) { m.onStored(c, l[0], false) }},
		{"+CDSI:", 0, func(l []string) { m.onStored(c, l[0], true) }},
		{"+CMT:", 1, func(l []string) { m.onDirect(c, l, false) }},
		{"+CDS:", 1, func(l []string) { m.onDirect(c, l, true) }},
	} {
		if err := c.at.AddIndication(ind.prefix, ind.h, at.WithTrailingLines(ind.lines)); err != nil {
			return fmt.Errorf("init: indication %s: %w", ind.prefix, err)
		}
	}
	cnmi := []struct{ cmd, reports string }{
		{"+CNMI=2,1,0,2,0", "stored (+CDSI)"},
		{"+CNMI=2,1,0,1,0", "direct (+CDS)"},
		{"+CNMI=2,1,0,0,0", "none"},
		{"+CNMI=1,1,0,0,0", "none"},
	}
	if m.cfg.Direct {
		if _, err := m.command(c, "+CSMS=1", m.cfg.CommandTimeout); err != nil {
			return refusedForGood(err, "init: direct delivery needs +CSMS=1: %w")
		}
		c.direct = true
		cnmi = []struct{ cmd, reports string }{{"+CNMI=2,2,0,1,0", "direct (+CDS)"}}
	}
	var lastErr error
	for _, n := range cnmi {
		_, err := m.command(c, n.cmd, m.cfg.CommandTimeout)
		if err == nil {
			m.setStatus(func(s *Status) { s.StatusReport = n.reports })
			lastErr = nil
			break
		}
		if errors.Is(err, ErrNotReady) {
			return err
		}
		lastErr = err
		m.log.Info("modem refused new message indication setting; trying the next", "cmd", n.cmd, "err", err)
	}
	if lastErr != nil {
		m.log.Warn("no new message indications; relying on periodic sweeps", "err", lastErr)
	}
	if err := m.initCalls(c); err != nil {
		return err
	}
	m.identify(c)
	return nil
}

func (m *ATModem) unlock(c *conn) error {
	info, err := m.command(c, "+CPIN?", m.cfg.CommandTimeout)
	if err != nil {
		return fmt.Errorf("init: SIM: %w", err)
	}
	joined := strings.Join(info, "")
	if !strings.HasPrefix(strings.TrimSpace(joined), "+CPIN:") {
		// No +CPIN line: an answer left over from before (a killed
		// client's half-typed command answered late) was taken for
		// this one. Not a SIM state: reconnect and ask again.
		return fmt.Errorf("init: SIM: no +CPIN in the answer %q; starting again", joined)
	}
	state := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(joined), "+CPIN:"))
	switch state {
	case "READY":
		return nil
	case "SIM PIN":
		if m.cfg.PIN == "" {
			return &permanentError{errors.New("SIM needs a PIN and none is configured (modem.pin)")}
		}
		if _, err := m.command(c, fmt.Sprintf(`+CPIN="%s"`, m.cfg.PIN), m.cfg.CommandTimeout); err != nil {
			// A wrong PIN must not be retried: the SIM locks after three.
			return &permanentError{fmt.Errorf("SIM rejected the configured PIN: %w", err)}
		}
		return nil
	default:
		return &permanentError{fmt.Errorf("SIM is %q; needs attention", state)}
	}
}

// identify reads what does not change while connected.
func (m *ATModem) identify(c *conn) {
	get := func(cmd string) string {
		info, err := m.command(c, cmd, m.cfg.CommandTimeout)
		if err != nil || len(info) == 0 {
			return ""
		}
		v := strings.TrimSpace(info[0])
		if i := strings.Index(v, ":"); i >= 0 && strings.HasPrefix(v, "+") {
			v = strings.TrimSpace(v[i+1:])
		}
		return strings.Trim(v, `"`)
	}
	manu, model, rev, imei, imsi := get("+CGMI"), get("+CGMM"), get("+CGMR"), get("+CGSN"), get("+CIMI")
	iccid := get("+CCID")
	if iccid == "" {
		iccid = get("+ICCID")
	}
	m.setStatus(func(s *Status) {
		s.Manufacturer, s.Model, s.Revision, s.IMEI, s.IMSI, s.ICCID = manu, model, rev, imei, imsi, iccid
	})
}

// refreshStatus reads signal, registration and operator.
func (m *ATModem) refreshStatus(c *conn) {
	var st Status
	if info, err := m.command(c, "+CSQ", m.cfg.CommandTimeout); err == nil && len(info) > 0 {
		v := strings.TrimSpace(strings.TrimPrefix(info[0], "+CSQ:"))
		rssi, _ := strconv.Atoi(strings.SplitN(v, ",", 2)[0])
		st.Signal = rssi
		if rssi >= 0 && rssi <= 31 {
			st.SignalDBm = -113 + 2*rssi
		}
	} else {
		st.Signal = 99
	}
	if info, err := m.command(c, "+CREG?", m.cfg.CommandTimeout); err == nil && len(info) > 0 {
		f := strings.Split(strings.TrimSpace(strings.TrimPrefix(info[0], "+CREG:")), ",")
		if len(f) >= 2 {
			switch strings.TrimSpace(f[1]) {
			case "1":
				st.Registered, st.Registration = true, "home"
			case "5":
				st.Registered, st.Registration = true, "roaming"
			case "2":
				st.Registration = "searching"
			case "3":
				st.Registration = "denied"
			case "4":
				st.Registration = "unknown"
			default:
				st.Registration = "not registered"
			}
		}
	}
	if st.Registration != "" && !st.Registered {
		// An LTE-only modem (SMS over SGs or IMS) may be off the circuit
		// switched network and on the EPS one: that counts too. A modem
		// without +CEREG answers an error, ignored.
		if info, err := m.command(c, "+CEREG?", m.cfg.CommandTimeout); err == nil && len(info) > 0 {
			f := strings.Split(strings.TrimSpace(strings.TrimPrefix(info[0], "+CEREG:")), ",")
			if len(f) >= 2 {
				switch strings.TrimSpace(f[1]) {
				case "1":
					st.Registered, st.Registration = true, "home (EPS)"
				case "5":
					st.Registered, st.Registration = true, "roaming (EPS)"
				}
			}
		}
	}
	if info, err := m.command(c, "+COPS?", m.cfg.CommandTimeout); err == nil && len(info) > 0 {
		f := strings.Split(strings.TrimPrefix(info[0], "+COPS:"), ",")
		if len(f) >= 3 {
			st.Operator = strings.Trim(strings.TrimSpace(f[2]), `"`)
		}
		if len(f) >= 4 {
			st.Network = accessTech[strings.TrimSpace(f[3])]
		}
	}
	m.setStatus(func(s *Status) {
		s.Signal, s.SignalDBm, s.Registered, s.Registration, s.Operator = st.Signal, st.SignalDBm, st.Registered, st.Registration, st.Operator
		s.Network = st.Network
	})
}

// accessTech names +COPS <AcT> (27.007 7.3).
var accessTech = map[string]string{"0": "GSM", "1": "GSM compact", "2": "UMTS", "3": "EDGE", "4": "HSDPA", "5": "HSUPA",
	"6": "HSPA", "7": "LTE", "8": "EC-GSM-IoT", "9": "NB-IoT", "10": "5G/LTE", "11": "NR", "12": "NG-RAN", "13": "LTE+NR"}

// onStored runs on a goroutine of its own for each indication (the AT
// engine starts one per line): it never waits. While the session is busy
// (a burst of sends, each with its status report and an answer) the
// indications came faster than it read them, and the goroutines waiting
// to queue theirs grew without bound: 11,000 of them, 60 MB, 10,000 SMS
// into a backlog. With events full, one sweep reads whatever is stored,
// this message included, so nothing is lost by not queueing it.
func (m *ATModem) onStored(c *conn, line string, report bool) {
	f := strings.Split(line, ",")
	idx, err := strconv.Atoi(strings.TrimSpace(f[len(f)-1]))
	if err != nil {
		m.log.Warn("unparsable indication", "line", line)
		return
	}
	select {
	case c.events <- event{slot: idx, report: report}:
	default:
		select {
		case c.sweepSoon <- struct{}{}:
		default: // one is asked for already
		}
	}
}

func (m *ATModem) onDirect(c *conn, lines []string, report bool) {
	if len(lines) < 2 {
		return
	}
	b, err := hex.DecodeString(strings.TrimSpace(lines[1]))
	if err != nil {
		m.log.Warn("direct delivery with a PDU that is not hex; keeping it as text", "line", lines[1])
		b = []byte(lines[1])
	}
	select {
	case c.events <- event{pdu: b, report: report}:
	case <-c.at.Closed():
	}
}

func (m *ATModem) handleEvent(ctx context.Context, c *conn, ev event) error {
	if ev.pdu != nil {
		return m.handUp(ctx, Inbound{Modem: m.cfg.ID, PDU: ev.pdu, Direct: true, Report: ev.report, conn: c.id})
	}
	return m.readSlot(ctx, c, ev.slot, false)
}

// readSlot reads one slot (AT+CMGR) and hands its message up; fresh says
// the read comes after the slot's latest delete, so it cannot be stale.
func (m *ATModem) readSlot(ctx context.Context, c *conn, slot int, fresh bool) error {
	info, err := m.command(c, fmt.Sprintf("+CMGR=%d", slot), m.cfg.CommandTimeout)
	if err != nil {
		if errors.Is(err, ErrNotReady) {
			return err
		}
		var cms *CMSError
		if errors.As(err, &cms) && cms.Code == 321 {
			// Handed up and deleted by a sweep since it was indicated.
			m.log.Debug("indicated message already gone", "slot", slot)
			return nil
		}
		m.log.Warn("cannot read indicated message", "slot", slot, "err", err)
		return nil
	}
	msgs := parseListing(info, "+CMGR:", slot)
	for _, in := range msgs {
		if err := m.handUpStored(ctx, c, in, fresh, false); err != nil {
			return err
		}
	}
	return nil
}

// sweep lists every stored message (AT+CMGL=4) and hands up those not
// already handed up: messages that arrived while we were away, or whose
// indication was lost.
func (m *ATModem) sweep(ctx context.Context, c *conn) error {
	if err := m.handUpReleasedCalls(ctx); err != nil {
		return err
	}
	info, err := m.command(c, "+CMGL=4", m.cfg.CommandTimeout*3)
	if err != nil {
		if errors.Is(err, ErrNotReady) {
			return err
		}
		m.log.Warn("listing stored messages failed", "err", err)
		return nil
	}
	for _, in := range parseListing(info, "+CMGL:", 0) {
		if err := m.handUpStored(ctx, c, in, false, false); err != nil {
			return err
		}
	}
	m.requestStorageCheck()
	return nil
}

// handUpStored hands up s unless it is in flight or may be a stale read
// (fresh: read after the slot's latest delete). fromClear marks what a
// clearing run of a full store hands up, to count what it deletes.
func (m *ATModem) handUpStored(ctx context.Context, c *conn, s stored, fresh, fromClear bool) error {
	if s.stat == 2 || s.stat == 3 {
		return nil // our own stored SUBMITs, not inbound
	}
	m.mu.Lock()
	if m.inflight[s.slot] {
		m.mu.Unlock()
		return nil
	}
	if !fresh && m.deleted[s.slot] == sha256.Sum256(s.pdu) {
		m.mu.Unlock()
		// Read again now: after the delete, so what it gives is there.
		slot := s.slot
		m.post(func(ctx context.Context, c *conn) error { return m.readSlot(ctx, c, slot, true) })
		return nil
	}
	m.inflight[s.slot] = true
	m.mu.Unlock()
	return m.handUp(ctx, Inbound{Modem: m.cfg.ID, PDU: s.pdu, Slot: s.slot, Report: s.report, conn: c.id, fromClear: fromClear})
}

func (m *ATModem) handUp(ctx context.Context, in Inbound) error {
	select {
	case m.incoming <- in:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

type stored struct {
	slot   int
	stat   int
	pdu    []byte
	report bool
}

// parseListing reads +CMGR/+CMGL answers: a header line then the PDU line.
// For +CMGR the slot is known from the command.
func parseListing(info []string, prefix string, slot int) []stored {
	var out []stored
	for i := 0; i < len(info); i++ {
		h, ok := strings.CutPrefix(info[i], prefix)
		if !ok || i+1 >= len(info) {
			continue
		}
		f := strings.Split(strings.TrimSpace(h), ",")
		s := stored{slot: slot, stat: -1}
		if prefix == "+CMGL:" {
			s.slot, _ = strconv.Atoi(strings.TrimSpace(f[0]))
			f = f[1:]
		}
		if len(f) > 0 {
			if v, err := strconv.Atoi(strings.TrimSpace(f[0])); err == nil {
				s.stat = v
			}
		}
		line := strings.TrimSpace(info[i+1])
		b, err := hex.DecodeString(line)
		if err != nil {
			// Not hex: keep the line itself so it is stored raw, not lost.
			b = []byte(line)
		}
		s.pdu = b
		s.report = isStatusReport(b)
		out = append(out, s)
		i++
	}
	return out
}

// isStatusReport looks at TP-MTI behind the SMSC address.
func isStatusReport(p []byte) bool {
	if len(p) == 0 || int(p[0])+1 >= len(p) {
		return false
	}
	return p[int(p[0])+1]&0x03 == 0x02
}
