// Package hw owns the GSM modems: opening serial ports (go.bug.st/serial),
// driving them with warthog618/modem's AT engine (with real timeouts and the
// trace decorator logging wire traffic at a trace level), initialising them,
// receiving (+CMTI, +CMT, +CDS, +CDSI and AT+CMGL sweeps), sending
// (AT+CMGS) and supervising the connection: a modem that is unplugged or
// stops answering is closed and reopened with capped backoff, and one that
// keeps not answering is reset (heal.go). A modem may be found by its IMEI
// or ICCID among the serial ports instead of by path (scan.go).
//
// It hands raw PDUs up and deletes or acknowledges them only when told to
// (Ack), after the caller has committed them. It knows nothing of PDU
// contents, storage or routing, and imports nothing of Outpost's.
package hw

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Inbound is one message handed up by a modem, raw.
type Inbound struct {
	Modem string
	// PDU is the PDU as the modem printed it (SMSC address first).
	PDU []byte
	// Slot is the SIM storage index (0 for a direct delivery).
	Slot int
	// Direct marks +CMT/+CDS deliveries, acknowledged with AT+CNMA.
	Direct bool
	// Report marks a status report.
	Report bool
	// Call, when set, is an incoming voice call (no PDU): Ack forgets it,
	// Release hands it up again at the next sweep.
	Call *Call
	// conn is the connection the message came on: +CNMA is only
	// meaningful on the same one.
	conn uint64
	// fromClear: handed up by a clearing run of a full store.
	fromClear bool
}

// Status is what is known of a modem.
type Status struct {
	ID           string    `json:"id"`
	State        string    `json:"state"` // connecting, ready, disconnected, failed
	Error        string    `json:"error,omitempty"`
	Device       string    `json:"device,omitempty"`
	Manufacturer string    `json:"manufacturer,omitempty"`
	Model        string    `json:"model,omitempty"`
	Revision     string    `json:"revision,omitempty"`
	IMEI         string    `json:"imei,omitempty"`
	IMSI         string    `json:"imsi,omitempty"`
	ICCID        string    `json:"iccid,omitempty"`
	Operator     string    `json:"operator,omitempty"`
	Signal       int       `json:"signal"`               // +CSQ rssi 0-31, 99 unknown
	SignalDBm    int       `json:"signal_dbm,omitempty"` // 0 (left out) when unknown: real values are -113 to -51
	Registered   bool      `json:"registered"`
	Registration string    `json:"registration,omitempty"`
	Since        time.Time `json:"since"`
	Reconnects   int       `json:"reconnects"`
	StatusReport string    `json:"status_reports,omitempty"` // how reports arrive
	// Calls counts the incoming calls since the daemon started;
	// LastCall describes the latest.
	Calls    int     `json:"calls,omitempty"`
	LastCall string  `json:"last_call,omitempty"`
	Storage  Storage `json:"storage,omitzero"`
	// Network is the access technology +COPS gives (GSM, UMTS, LTE…).
	Network string `json:"network,omitempty"`
	// Hangs counts the connections that ended with the modem no longer
	// answering; Resets the reset steps taken (heal.go), LastReset says
	// the last one and what came of it.
	Hangs     int       `json:"hangs,omitempty"`
	Resets    int       `json:"resets,omitempty"`
	LastReset string    `json:"last_reset,omitempty"`
	ResetAt   time.Time `json:"reset_at,omitzero"`
	Balance   *Balance  `json:"balance,omitempty"` // the SIM's credit (ussd.go)
}

// CanSend reports whether the modem can be given a message: it is ready
// and not known to be off the network (registration unknown counts as on).
func (s Status) CanSend() bool {
	if s.State != StateReady {
		return false
	}
	switch s.Registration {
	case "searching", "denied", "not registered":
		return false
	}
	return true
}

// Modem states.
const (
	StateConnecting   = "connecting"
	StateReady        = "ready"
	StateDisconnected = "disconnected"
	StateFailed       = "failed"
)

// Modem is what the SMS connector needs from a modem.
type Modem interface {
	// SendPDU sends one SMS-SUBMIT TPDU (without SMSC) and returns the
	// TP-MR the network assigned. It blocks until the modem answers (up to
	// the send timeout). An error does not prove the message was not sent.
	SendPDU(ctx context.Context, tpdu []byte) (mr int, err error)
	// Incoming delivers raw messages. Each must be passed to Ack once the
	// caller has committed it; until then it may be handed up again (after
	// a reconnect or sweep), so callers de-duplicate.
	Incoming() <-chan Inbound
	// Ack deletes the message from the SIM (AT+CMGD) or acknowledges a
	// direct delivery (AT+CNMA). When it fails, the message is handed up
	// again by the next sweep.
	Ack(ctx context.Context, in Inbound) error
	// Release gives back a message the caller could not commit: the next
	// sweep hands it up again (without it, only a reconnect would).
	Release(in Inbound)
	// Status returns the last known status without talking to the modem.
	Status(ctx context.Context) (Status, error)
	// Done is closed when the modem has been closed.
	Done() <-chan struct{}
	Close() error
}

// Errors.
var (
	ErrNotReady = errors.New("modem not ready")
	ErrClosed   = errors.New("modem closed")
)

// Class says what an error of a modem means for the message it was
// sending.
type Class int

const (
	// Retry: it may be this message or may not; retried, and counted
	// toward giving up (the default for what the table does not know).
	Retry Class = iota
	// Outage: the network, the SIM or the modem cannot send anything now;
	// the message is fine. Not counted: the message waits.
	Outage
	// Permanent: this message is bad (number, content, barring); sending
	// it again cannot help.
	Permanent
)

func (c Class) String() string {
	switch c {
	case Outage:
		return "outage"
	case Permanent:
		return "permanent"
	}
	return "retry"
}

// The one table of what modem errors mean (27.005 3.2.5 for +CMS, 27.007
// 9.2 for +CME, 24.011 E.2 for the network's RP causes the +CMS codes
// below 128 carry, 23.040 9.2.3.22 for TP-FCS 128-255). Codes not listed
// are Retry.
var (
	cmsClasses = classes(map[Class][]int{
		Permanent: {1, 8, 10, 21, 27, 28, 29, 30, 50, 96, 97, 98, 99, 111, 127,
			128, 129, 130, 143, 144, 145, 159, 160, 161, 175, 176, 192, 193, 194, 195, 196, 197, 198, 199, 208, 255,
			303, 304, 305},
		Outage: {38, 41, 42, 47, // network out of order, temporary failure, congestion, resources unavailable
			301, 302, // SMS service of ME reserved, operation not allowed (the SMS side not ready yet)
			310, 311, 312, 313, 314, 315, 316, 317, 318, // SIM missing, locked, busy or failed
			322, 330, 331, 332, // memory full, SMSC unknown, no network service, network timeout
			512, 513, 514, 515}, // MM establishment, lower layer failure, congestion, please wait
	})
	cmeClasses = classes(map[Class][]int{
		Outage: {10, 11, 12, 13, 14, 15, 16, 17, 18, 30, 31, 32}, // SIM, no network, network timeout, emergency calls only
	})
)

func classes(m map[Class][]int) map[int]Class {
	out := map[int]Class{}
	for c, codes := range m {
		for _, code := range codes {
			out[code] = c
		}
	}
	return out
}

// Classify says what err, from SendPDU, means for the message: a modem
// not ready or gone is an Outage, a +CMS or +CME error is looked up in
// the table, anything else is Retry.
func Classify(err error) Class {
	var cms *CMSError
	var cme *CMEError
	switch {
	case err == nil:
		return Retry
	case errors.Is(err, ErrNotReady), errors.Is(err, ErrClosed):
		return Outage
	case errors.As(err, &cms):
		return cmsClasses[cms.Code]
	case errors.As(err, &cme):
		return cmeClasses[cme.Code]
	}
	return Retry
}

// CMSError is a "+CMS ERROR: <code>" answer (27.005 3.2.5).
type CMSError struct {
	Code int
	Text string
}

func (e *CMSError) Error() string { return errorLine("+CMS ERROR", e.Code, e.Text) }

// Permanent reports whether retrying the same PDU cannot help.
func (e *CMSError) Permanent() bool { return cmsClasses[e.Code] == Permanent }

// CMEError is a "+CME ERROR: <code>" answer (27.007 9.2).
type CMEError struct {
	Code int
	Text string
}

func (e *CMEError) Error() string { return errorLine("+CME ERROR", e.Code, e.Text) }

// errorLine writes an error answer as the modem gave it, with its meaning.
func errorLine(kind string, code int, text string) string {
	if text != "" {
		return fmt.Sprintf("%s: %d (%s)", kind, code, text)
	}
	return fmt.Sprintf("%s: %d", kind, code)
}

// cmsText names the common +CMS ERROR codes.
var cmsText = map[int]string{
	1: "unassigned number", 8: "operator determined barring", 10: "call barred", 21: "short message transfer rejected",
	27: "destination out of service", 28: "unidentified subscriber", 29: "facility rejected", 30: "unknown subscriber",
	38: "network out of order", 41: "temporary failure", 42: "congestion", 47: "resources unavailable",
	50: "requested facility not subscribed", 69: "requested facility not implemented", 96: "invalid message",
	111: "protocol error", 127: "interworking unspecified", 300: "ME failure", 301: "SMS service of ME reserved",
	302: "operation not allowed", 303: "operation not supported", 304: "invalid PDU mode parameter", 305: "invalid text mode parameter",
	310: "SIM not inserted", 311: "SIM PIN required", 313: "SIM failure", 314: "SIM busy", 316: "SIM PUK required",
	320: "memory failure", 321: "invalid memory index", 322: "memory full", 330: "SMSC address unknown",
	331: "no network service", 332: "network timeout", 340: "no +CNMA acknowledgement expected", 500: "unknown error",
	512: "MM establishment failure", 513: "lower layer failure", 514: "congestion", 515: "please wait",
}

var cmeText = map[int]string{
	3: "operation not allowed", 4: "operation not supported", 10: "SIM not inserted", 11: "SIM PIN required",
	12: "SIM PUK required", 13: "SIM failure", 14: "SIM busy", 16: "incorrect password", 30: "no network service",
	31: "network timeout", 100: "unknown",
}
