package hw

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/outpost-sms/outpost/hw/sim"
)

// The one table: what says "this message is bad" is permanent, what says
// "nothing can be sent now" is an outage (not counted), the rest is
// retried and counted.
func TestClassify(t *testing.T) {
	for _, c := range []struct {
		err  error
		want Class
	}{
		{&CMSError{Code: 331}, Outage},    // no network service
		{&CMSError{Code: 332}, Outage},    // network timeout
		{&CMSError{Code: 512}, Outage},    // SMSC busy: MM establishment failure
		{&CMSError{Code: 513}, Outage},    // lower layer failure
		{&CMSError{Code: 38}, Outage},     // network out of order
		{&CMSError{Code: 42}, Outage},     // congestion
		{&CMSError{Code: 314}, Outage},    // SIM busy
		{&CMEError{Code: 30}, Outage},     // no network service
		{&CMSError{Code: 1}, Permanent},   // unassigned number
		{&CMSError{Code: 21}, Permanent},  // short message transfer rejected
		{&CMSError{Code: 96}, Permanent},  // invalid message
		{&CMSError{Code: 304}, Permanent}, // invalid PDU mode parameter
		{&CMSError{Code: 500}, Retry},     // unknown error
		{&CMSError{Code: 300}, Retry},     // ME failure
		{&CMEError{Code: 100}, Retry},     // unknown
		{errors.New("AT+CMGS: garbled"), Retry},
		{fmt.Errorf("AT+CMGS: no answer: %w", ErrNotReady), Outage},
		{ErrClosed, Outage},
	} {
		wrapped := fmt.Errorf("send part 1/1: %w", c.err)
		if got := Classify(wrapped); got != c.want {
			t.Errorf("%v: %s, want %s", c.err, got, c.want)
		}
	}
	if !(&CMSError{Code: 96}).Permanent() || (&CMSError{Code: 331}).Permanent() {
		t.Error("CMSError.Permanent disagrees with the table")
	}
}

// A send refused for want of network makes the modem read its registration
// at once (not at the next status poll), and while it is not registered it
// reads it every RegistrationPoll, so sending resumes soon after.
func TestNoNetworkSeenAtOnceAndPolled(t *testing.T) {
	r := newRig(t, func(c *Config) { c.StatusInterval = time.Hour; c.RegistrationPoll = 50 * time.Millisecond })
	if st := r.waitState(StateReady); !st.CanSend() {
		t.Fatalf("ready but cannot send: %+v", st)
	}
	r.sim.SetFaults(sim.Faults{NoNetwork: true})
	_, err := r.modem.SendPDU(context.Background(), mustEncode(t, "x"))
	if Classify(err) != Outage {
		t.Fatalf("send without network: %v (%s), want an outage", err, Classify(err))
	}
	if st, _ := r.modem.Status(context.Background()); st.CanSend() || st.Registered || st.Registration != "searching" {
		t.Fatalf("after +CMS ERROR: 331 the status still says it can send: %+v", st)
	}
	r.sim.SetFaults(sim.Faults{})
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, _ := r.modem.Status(context.Background())
		if st.CanSend() && st.Registered {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("registration back but the status still says %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// An LTE-only modem, off the circuit switched network (+CREG: 0,0) but
// registered on the EPS one (+CEREG: 0,1), can send.
func TestRegisteredOnLTEOnly(t *testing.T) {
	r := newRig(t, nil)
	r.sim.SetFaults(sim.Faults{EPSOnly: true})
	st := r.waitState(StateReady)
	if !st.CanSend() || !st.Registered || st.Registration != "home (EPS)" {
		t.Fatalf("LTE-only modem: %+v", st)
	}
	if _, err := r.modem.SendPDU(context.Background(), mustEncode(t, "x")); err != nil {
		t.Fatal(err)
	}
}

// TestUnknownSignalNotZeroDBm: an unknown signal (CSQ 99, a modem away)
// is left out of the JSON, not 0 dBm, which a dashboard reads as a
// perfect signal.
func TestUnknownSignalNotZeroDBm(t *testing.T) {
	b, _ := json.Marshal(Status{ID: "m1", Signal: 99})
	if strings.Contains(string(b), "signal_dbm") {
		t.Fatalf("unknown signal: %s", b)
	}
	b, _ = json.Marshal(Status{ID: "m1", Signal: 21, SignalDBm: -71})
	if !strings.Contains(string(b), `"signal_dbm":-71`) {
		t.Fatalf("known signal: %s", b)
	}
}
