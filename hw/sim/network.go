// Package sim is a simulated GSM network and modems that speak AT on the
// modem side of the wire, over any io.ReadWriter (net.Pipe in unit tests)
// or a pty (ServePTY, for end-to-end tests and third-party tools such as
// Gammu). It exists so that the real serial and AT code of package hw runs
// in tests and in the daemon's default configuration.
//
// The network routes SMS-SUBMITs between its modems, returns status reports
// when asked, and always contains an echo subscriber (EchoNumber) that
// answers every message with "echo: <text>" in the alphabet it received.
// Faults can be injected per modem. It may import pdu, nothing else of
// Outpost's.
package sim

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/outpost-sms/outpost/pdu"
	"github.com/warthog618/sms"
	"github.com/warthog618/sms/encoding/pdumode"
	"github.com/warthog618/sms/encoding/tpdu"
	"github.com/warthog618/sms/encoding/ucs2"
)

// EchoNumber is the subscriber that answers every SMS with "echo: <text>".
const EchoNumber = "+15555550100"

// SMSCNumber is the simulated service centre.
const SMSCNumber = "+15555550000"

// Network routes messages between simulated modems.
type Network struct {
	// Now is the network clock (service centre time stamps).
	Now func() time.Time
	// EchoDelay delays the echo's answer and status reports, as a real
	// network would.
	EchoDelay time.Duration

	log    *slog.Logger
	mu     sync.Mutex
	modems map[string]*Modem
	echo   map[string][]*pdu.Message // echo's reassembly, by group key
	ref    int
	wg     sync.WaitGroup
}

// NewNetwork returns a network with the echo subscriber.
func NewNetwork(log *slog.Logger) *Network {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Network{
		Now:    time.Now,
		log:    log,
		modems: map[string]*Modem{},
		echo:   map[string][]*pdu.Message{},
	}
}

// Wait waits for deliveries in progress (echo answers, status reports).
func (n *Network) Wait() { n.wg.Wait() }

// NewModem adds a modem with the given number to the network.
func (n *Network) NewModem(number string) *Modem {
	m := newModem(n, number)
	n.mu.Lock()
	n.modems[number] = m
	n.mu.Unlock()
	return m
}

func (n *Network) modem(number string) *Modem {
	n.mu.Lock()
	defer n.mu.Unlock()
	if m, ok := n.modems[number]; ok {
		return m
	}
	// Match national forms by the last 9 digits.
	for k, m := range n.modems {
		if len(k) >= 9 && len(number) >= 9 && k[len(k)-9:] == number[len(number)-9:] {
			return m
		}
	}
	return nil
}

// submit is called by a modem for each SMS-SUBMIT it sends. It returns the
// TP-MR the modem reports and an error code (0 for success).
func (n *Network) submit(from *Modem, sub *tpdu.TPDU, mr byte) int {
	to := sub.DA.Number()
	submitted := n.Now()
	// Stamped now, when the service centre takes it: the recipient sees
	// the time it was sent, however late it is handed on.
	deliver := n.deliverFrom(from.number, sub)
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if n.EchoDelay > 0 {
			time.Sleep(n.EchoDelay)
		}
		status := byte(0x00)
		switch {
		case to == EchoNumber:
			n.toEcho(from, sub)
		default:
			if dst := n.modem(to); dst != nil {
				dst.receive(deliver, false)
			} else {
				status = 0x43 // not obtainable
			}
		}
		if sub.FirstOctet.SRR() {
			from.receive(n.statusReport(sub, mr, submitted, status), true)
		}
	}()
	return 0
}

// deliverFrom turns a SUBMIT into the DELIVER its recipient gets.
func (n *Network) deliverFrom(from string, sub *tpdu.TPDU) []byte {
	d, _ := tpdu.NewDeliver()
	d.OA = tpdu.NewAddress(tpdu.FromNumber(from))
	d.PID, d.DCS, d.UDH, d.UD = sub.PID, sub.DCS, sub.UDH, sub.UD
	if len(d.UDH) > 0 {
		d.FirstOctet |= tpdu.FoUDHI
	}
	d.SCTS = tpdu.Timestamp{Time: n.Now().Truncate(time.Second)}
	b, err := d.MarshalBinary()
	if err != nil {
		n.log.Error("sim: marshal deliver", "err", err)
		return nil
	}
	return withSMSC(b)
}

func (n *Network) statusReport(sub *tpdu.TPDU, mr byte, submitted time.Time, st byte) []byte {
	r := tpdu.TPDU{Direction: tpdu.MT}
	r.FirstOctet = tpdu.FirstOctet(byte(tpdu.MtCommand)) // MTI 2 towards the mobile: status report
	r.MR = mr
	r.RA = sub.DA
	r.SCTS = tpdu.Timestamp{Time: submitted.Truncate(time.Second)}
	r.DT = tpdu.Timestamp{Time: n.Now().Truncate(time.Second)}
	r.ST = st
	b, err := r.MarshalBinary()
	if err != nil {
		n.log.Error("sim: marshal status report", "err", err)
		return nil
	}
	return withSMSC(b)
}

func withSMSC(tp []byte) []byte {
	p := pdumode.PDU{SMSC: pdumode.SMSCAddress{Address: tpdu.NewAddress(tpdu.FromNumber(SMSCNumber))}, TPDU: tp}
	b, _ := p.MarshalBinary()
	return b
}

// toEcho collects the parts of a message to the echo subscriber and, when
// all are in, answers.
func (n *Network) toEcho(from *Modem, sub *tpdu.TPDU) {
	raw := n.deliverFrom(from.number, sub)
	m, err := pdu.Decode(raw)
	if err != nil {
		n.log.Warn("sim: echo cannot decode", "err", err)
		return
	}
	parts := []*pdu.Message{m}
	if m.IsPart() {
		key := pdu.GroupKey("echo", m)
		n.mu.Lock()
		n.echo[key] = append(n.echo[key], m)
		parts = n.echo[key]
		if len(parts) < m.UDH.Concat.Total {
			n.mu.Unlock()
			return
		}
		delete(n.echo, key)
		n.mu.Unlock()
	}
	j, err := pdu.Join(parts)
	if err != nil {
		n.log.Warn("sim: echo cannot join", "err", err)
		return
	}
	var tpdus []tpdu.TPDU
	n.mu.Lock()
	n.ref++
	ref := n.ref
	n.mu.Unlock()
	opts := []sms.EncoderOption{sms.AsDeliver, sms.From(EchoNumber)}
	counter := fixedCounter(ref % 256)
	switch {
	case !j.IsText:
		enc := sms.NewEncoder(append(opts, sms.As8Bit)...)
		enc.ConcatRef = counter
		tpdus, err = enc.Encode(append([]byte("echo: "), j.Data...))
	case j.Coding == pdu.UCS2:
		enc := sms.NewEncoder(append(opts, sms.AsUCS2)...)
		enc.ConcatRef = counter
		tpdus, err = enc.Encode(ucs2.Encode([]rune("echo: " + j.Text)))
	default:
		enc := sms.NewEncoder(opts...)
		enc.ConcatRef = counter
		tpdus, err = enc.Encode([]byte("echo: " + j.Text))
	}
	if err != nil {
		n.log.Warn("sim: echo cannot encode", "err", err)
		return
	}
	for i := range tpdus {
		tpdus[i].SCTS = tpdu.Timestamp{Time: n.Now().Truncate(time.Second)}
		b, err := tpdus[i].MarshalBinary()
		if err != nil {
			n.log.Warn("sim: echo marshal", "err", err)
			return
		}
		from.receive(withSMSC(b), false)
	}
}

type fixedCounter int

func (c fixedCounter) Count() int { return int(c) }

// String describes the network for logs.
func (n *Network) String() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var nums []string
	for k := range n.modems {
		nums = append(nums, k)
	}
	return fmt.Sprintf("sim network (%s, echo %s)", strings.Join(nums, ", "), EchoNumber)
}
