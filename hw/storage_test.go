package hw

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/outpost-sms/outpost/hw/sim"
	"github.com/outpost-sms/outpost/pdu"
	"github.com/warthog618/sms"
	"github.com/warthog618/sms/encoding/pdumode"
	"github.com/warthog618/sms/encoding/tpdu"
)

// deliverHex is an SMS-DELIVER from a phone, with SMSC, as hex.
func deliverHex(t *testing.T, from, text string) string {
	t.Helper()
	tps, err := sms.NewEncoder(sms.AsDeliver, sms.From(from)).Encode([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	tps[0].SCTS = tpdu.Timestamp{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	b, err := tps[0].MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	p := pdumode.PDU{SMSC: pdumode.SMSCAddress{Address: tpdu.NewAddress(tpdu.FromNumber(sim.SMSCNumber))}, TPDU: b}
	raw, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%X", raw)
}

func TestParseCPMS(t *testing.T) {
	for line, want := range map[string]string{
		`+CPMS: "SM",3,30,"SM",3,30,"SM",4,30`:    "SM 4/30",
		`+CPMS: 3,30,3,30,3,30`:                   "SM? 3/30",
		`+CPMS: "ME",0,255,"ME",0,255,"MT",9,285`: "MT 9/285",
		`+CPMS: "SM",7,10`:                        "SM 7/10",
	} {
		mem, used, total, ok := parseCPMS(line)
		got := fmt.Sprintf("%s %d/%d", mem, used, total)
		if mem == "" {
			got = fmt.Sprintf("SM? %d/%d", used, total)
		}
		if !ok || got != want {
			t.Errorf("%s: %s (ok %v), want %s", line, got, ok, want)
		}
	}
	if _, _, _, ok := parseCPMS(`+CPMS: "SM",x,30`); ok {
		t.Error("garbage parsed")
	}
}

// A store that fills because deletes fail is found full (status), warned
// about before, and cleared of the committed messages once deletes work:
// the network then delivers what it kept, each message once.
func TestFullStoreClearedOfCommitted(t *testing.T) {
	r := newRig(t, func(c *Config) { c.SweepInterval = time.Hour })
	r.waitState(StateReady)
	if err := r.sim.SetCapacity(5); err != nil {
		t.Fatal(err)
	}
	f := r.sim.Faults()
	f.FailDeletes = 1000
	r.sim.SetFaults(f)
	ctx := context.Background()
	const n = 9
	for i := range n {
		if err := r.sim.Inject(deliverHex(t, "+15555550111", fmt.Sprintf("message %d", i)), false); err != nil {
			t.Fatal(err)
		}
	}
	// The "connector": commits by text, acks everything (a re-read of
	// a committed one is recognised).
	got := map[string]int{}
	handle := func(in Inbound) {
		m, err := pdu.Decode(in.PDU)
		if err != nil {
			t.Fatal(err)
		}
		got[m.Text]++
		r.modem.Ack(ctx, in)
	}
	for range 5 {
		handle(r.next())
	}
	var st Status
	waitStatus := func(what string, cond func(Status) bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			st, _ = r.modem.Status(ctx)
			if cond(st) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; status %+v", what, st.Storage)
			}
			select {
			case in := <-r.modem.Incoming():
				handle(in)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	waitStatus("the store found full", func(s Status) bool { return s.Storage.Full })
	if st.Storage.Used != 5 || st.Storage.Total != 5 || st.Storage.TimesFull != 1 || st.Storage.Warning == "" || r.sim.Pending() != n-5 {
		t.Fatalf("full store: %+v, network keeps %d", st.Storage, r.sim.Pending())
	}
	// While its deletes keep failing, the store is cleared once a
	// backoff (1 s, doubling), not again after each failed delete.
	listings := func() int {
		k := 0
		for _, c := range r.sim.Commands() {
			if strings.Contains(c, "+CMGL=4") {
				k++
			}
		}
		return k
	}
	before := listings()
	for end := time.Now().Add(1500 * time.Millisecond); time.Now().Before(end); {
		select {
		case in := <-r.modem.Incoming():
			handle(in)
		case <-time.After(20 * time.Millisecond):
		}
	}
	if k := listings() - before; k > 3 {
		t.Errorf("the full store was listed %d times in 1.5 s while its deletes failed: the clearing runs must back off", k)
	}
	f.FailDeletes = 0
	r.sim.SetFaults(f)
	waitStatus("every message in and the store empty", func(s Status) bool {
		return len(got) == n && s.Storage.Used == 0 && !s.Storage.Full && r.sim.Pending() == 0
	})
	if st.Storage.Cleared < 1 || st.Storage.Warning != "" {
		t.Fatalf("after clearing: %+v", st.Storage)
	}
	for text, k := range got {
		// Committed ones are handed up again to be recognised: more than
		// once is fine here; what matters is every one came.
		if k < 1 {
			t.Errorf("%s: %d", text, k)
		}
	}
}

// Messages another program saved to send are not Outpost's: a store full
// of them is reported, not cleared.
func TestFullStoreOfSavedSubmitsReported(t *testing.T) {
	r := newRig(t, func(c *Config) { c.SweepInterval = 300 * time.Millisecond })
	r.waitState(StateReady)
	r.sim.SetCapacity(4)
	if k, err := r.sim.Fill(4, "unsent"); err != nil || k != 4 {
		t.Fatalf("fill: %d %v", k, err)
	}
	var st Status
	deadline := time.Now().Add(10 * time.Second)
	for st.Storage.Warning == "" || !st.Storage.Full || !strings.Contains(st.Storage.Warning, "another program") {
		if time.Now().After(deadline) {
			t.Fatalf("status %+v", st.Storage)
		}
		time.Sleep(20 * time.Millisecond)
		st, _ = r.modem.Status(context.Background())
	}
	r.noMore(500 * time.Millisecond)
	if r.sim.Stored() != 4 {
		t.Fatalf("%d left of the 4 saved messages", r.sim.Stored())
	}
}

// From storage_warn percent the status warns, before the store is full.
func TestStoreWarnsBeforeFull(t *testing.T) {
	r := newRig(t, func(c *Config) { c.SweepInterval = time.Hour })
	r.waitState(StateReady)
	r.sim.SetCapacity(10)
	f := r.sim.Faults()
	f.FailDeletes = 1000
	r.sim.SetFaults(f)
	for i := range 8 {
		if err := r.sim.Inject(deliverHex(t, "+15555550111", fmt.Sprintf("warn %d", i)), false); err != nil {
			t.Fatal(err)
		}
		r.modem.Ack(context.Background(), r.next())
	}
	// Generous: under a loaded CI machine a check can wait behind the
	// supervisor's other work; it returns as soon as the figure is read.
	deadline := time.Now().Add(30 * time.Second)
	for {
		// A message whose delete failed is handed up again (by the
		// indication and by a sweep, say): keep taking them, as the
		// router does, or the supervisor waits to hand one up and
		// never reads the store's use again.
		select {
		case in := <-r.modem.Incoming():
			r.modem.Ack(context.Background(), in)
		default:
		}
		st, _ := r.modem.Status(context.Background())
		if st.Storage.Used == 8 {
			if st.Storage.Full || !strings.Contains(st.Storage.Warning, "80% full (8 of 10)") {
				t.Fatalf("storage %+v", st.Storage)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("storage %+v", st.Storage)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
