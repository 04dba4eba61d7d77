package sms_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outpost-sms/outpost/bridge/sms"
	"github.com/outpost-sms/outpost/hw"
	"github.com/outpost-sms/outpost/hw/sim"
)

// sweepRig is a rig whose modem sweeps (AT+CMGL=4) every 100 ms.
func sweepRig(t *testing.T, conn func(*sms.Connector)) *rig {
	t.Helper()
	return newRigWith(t, true, func(c *hw.Config) { c.SweepInterval = 100 * time.Millisecond }, conn)
}

// waitCond polls cond until it holds or 10 s pass.
func waitCond(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func reconnects(t *testing.T, r *rig) int {
	t.Helper()
	st, err := r.modem.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st.Reconnects
}

// An inbound SMS whose commit failed once is stored by the next sweep, on
// the same connection: it does not wait on the SIM for a reconnect.
func TestFailedCommitRetriedBySweep(t *testing.T) {
	var fails atomic.Int32
	fails.Store(1)
	var tried atomic.Int32
	r := sweepRig(t, func(c *sms.Connector) {
		c.BeforeCommit = func() error {
			tried.Add(1)
			if fails.Add(-1) >= 0 {
				return errors.New("injected: database or disk is full")
			}
			return nil
		}
	})
	waitCond(t, "the modem to be ready", func() bool { st, _ := r.modem.Status(context.Background()); return st.State == hw.StateReady })
	if err := r.sim.Inject(deliverHex, false); err != nil {
		t.Fatal(err)
	}
	r.waitApp(t, "Ok sir")
	if n := tried.Load(); n < 2 {
		t.Errorf("committed after %d tries; the injected failure did not happen", n)
	}
	if n := reconnects(t, r); n != 0 {
		t.Errorf("%d reconnects; the sweep should have handed it up again", n)
	}
	waitCond(t, "the SIM slot to be deleted", func() bool { return r.sim.Stored() == 0 })
}

// A stored message whose AT+CMGD failed once is deleted by the next sweep
// (read again, recognised as stored, deleted), not after a replug, and is
// stored once.
func TestFailedDeleteRetriedBySweep(t *testing.T) {
	r := sweepRig(t, nil)
	waitCond(t, "the modem to be ready", func() bool { st, _ := r.modem.Status(context.Background()); return st.State == hw.StateReady })
	r.sim.SetFaults(sim.Faults{FailDeletes: 1})
	if err := r.sim.Inject(deliverHex, false); err != nil {
		t.Fatal(err)
	}
	r.waitApp(t, "Ok sir")
	waitCond(t, "the SIM slot to be deleted", func() bool { return r.sim.Stored() == 0 })
	deletes := 0
	for _, c := range r.sim.Commands() {
		if len(c) > 7 && c[:7] == "AT+CMGD" {
			deletes++
		}
	}
	if deletes < 2 {
		t.Errorf("%d AT+CMGD; the injected failure did not happen", deletes)
	}
	if n := reconnects(t, r); n != 0 {
		t.Errorf("%d reconnects; the sweep should have deleted it", n)
	}
	inbox, err := r.router.Inbox(context.Background(), 10)
	if err != nil || len(inbox) != 1 {
		t.Fatalf("inbox: %d messages (want 1), %v", len(inbox), err)
	}
	r.waitApp(t, "Ok sir") // still exactly once
}
