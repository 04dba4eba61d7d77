package hw

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/outpost-sms/outpost/hw/sim"
	"github.com/warthog618/sms/encoding/gsm7"
	"github.com/warthog618/sms/encoding/ucs2"
)

func TestUSSDBalance(t *testing.T) {
	r := newRig(t, nil)
	r.waitState(StateReady)
	r.sim.SetBalance(42.5)
	got, err := r.modem.USSD(context.Background(), sim.BalanceCode, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Status != USSDDone || got[0].Text != sim.BalanceText(42.5) {
		t.Fatalf("screens %+v", got)
	}
}

// The menu comes as text over several lines, as a SIM800 sends it.
func TestUSSDTwoStepMenu(t *testing.T) {
	r := newRig(t, nil)
	r.waitState(StateReady)
	got, err := r.modem.USSD(context.Background(), sim.MenuCode, []string{"2", "1"})
	if err != nil {
		t.Fatal(err)
	}
	want := []USSDReply{{USSDMenu, "1. Balance\n2. Bundles", 15}, {USSDMenu, "1. Daily\n2. Weekly", 15}, {USSDDone, "Daily bundle activated", 15}}
	if !slices.Equal(got, want) {
		t.Fatalf("screens\n%+v\nwant\n%+v", got, want)
	}
	if codes := r.sim.USSDCodes(); !slices.Equal(codes, []string{sim.MenuCode, "2", "1"}) {
		t.Fatalf("the network got %q", codes)
	}
}

// A menu left without an answer is ended, so the next session starts
// afresh rather than answering the menu.
func TestUSSDOpenMenuIsEnded(t *testing.T) {
	r := newRig(t, nil)
	r.waitState(StateReady)
	ctx := context.Background()
	got, err := r.modem.USSD(ctx, sim.MenuCode, nil)
	if err != nil || len(got) != 1 || got[0].Status != USSDMenu {
		t.Fatalf("screens %+v err %v", got, err)
	}
	got, err = r.modem.USSD(ctx, sim.BalanceCode, nil)
	if err != nil || len(got) != 1 || got[0].Text != sim.BalanceText(100) {
		t.Fatalf("after an open menu: screens %+v err %v", got, err)
	}
	if !slices.Contains(r.sim.Commands(), "AT+CUSD=2") {
		t.Fatalf("the menu was not ended: %q", r.sim.Commands())
	}
}

func TestUSSDRefusals(t *testing.T) {
	r := newRig(t, nil)
	r.waitState(StateReady)
	ctx := context.Background()
	got, err := r.modem.USSD(ctx, "*999#", nil)
	if !errors.Is(err, ErrUSSD) || len(got) != 1 || got[0].Status != USSDUnsupported {
		t.Fatalf("unknown code: screens %+v err %v", got, err)
	}
	if _, err := r.modem.USSD(ctx, sim.BalanceCode, []string{"1"}); err == nil || !strings.Contains(err.Error(), "before answer 1 of 1") {
		t.Fatalf("answer to a finished session: %v", err)
	}
	for _, bad := range []string{"", `*1"#`, "*1\r#", "*100#é"} {
		if _, err := r.modem.USSD(ctx, bad, nil); err == nil {
			t.Errorf("%q taken", bad)
		}
	}
	r.sim.SetFaults(sim.Faults{NoNetwork: true})
	if _, err := r.modem.USSD(ctx, sim.BalanceCode, nil); err == nil || !strings.Contains(err.Error(), "+CME ERROR: 30") {
		t.Fatalf("no network: %v", err)
	}
}

// A network that does not answer in time: the session is ended, the
// modem is not taken as hung, and its late answer does not become the
// next session's.
func TestUSSDTimeout(t *testing.T) {
	r := newRig(t, func(c *Config) { c.USSDTimeout = 300 * time.Millisecond })
	r.waitState(StateReady)
	r.sim.SetFaults(sim.Faults{USSDDelay: time.Second})
	ctx := context.Background()
	if _, err := r.modem.USSD(ctx, sim.MenuCode, nil); err == nil || !strings.Contains(err.Error(), "no answer from the network") {
		t.Fatalf("err %v", err)
	}
	r.sim.SetFaults(sim.Faults{})
	got, err := r.modem.USSD(ctx, sim.BalanceCode, nil)
	if err != nil || len(got) != 1 || got[0].Text != sim.BalanceText(100) {
		t.Fatalf("screens %+v err %v", got, err)
	}
	time.Sleep(time.Second) // the late answer, had it come
	if st, _ := r.modem.Status(ctx); st.State != StateReady || st.Reconnects != 0 {
		t.Fatalf("status %+v", st)
	}
}

// An SMS sent while the network prepares a USSD answer goes out at once:
// the two share the AT engine, not a lock.
func TestSendDuringUSSD(t *testing.T) {
	r := newRig(t, nil)
	r.waitState(StateReady)
	r.sim.SetFaults(sim.Faults{USSDDelay: 1500 * time.Millisecond})
	ctx := context.Background()
	type result struct {
		got []USSDReply
		err error
		at  time.Time
	}
	done := make(chan result, 1)
	go func() {
		got, err := r.modem.USSD(ctx, sim.BalanceCode, nil)
		done <- result{got, err, time.Now()}
	}()
	waitFor(t, "the USSD string to reach the network", func() bool { return len(r.sim.USSDCodes()) == 1 })
	start := time.Now()
	if _, err := r.modem.SendPDU(ctx, mustEncode(t, "during ussd")); err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	t.Logf("AT+CMGS took %s during the USSD session", sent.Sub(start))
	res := <-done
	if res.err != nil || len(res.got) != 1 || res.got[0].Text != sim.BalanceText(100) {
		t.Fatalf("screens %+v err %v", res.got, res.err)
	}
	if !sent.Before(res.at) {
		t.Fatal("the SMS waited for the USSD session")
	}
	t.Logf("the SMS was accepted %s before the USSD answer", res.at.Sub(sent).Round(time.Millisecond))
}

func waitFor(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestDecodeUSSD(t *testing.T) {
	packed := func(s string) string {
		g, err := gsm7.Encode([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("%X", gsm7.Pack7BitUSSD(g, 0))
	}
	for _, c := range []struct {
		in   string
		dcs  int
		want string
	}{
		{"Bal: KES 50.00", 15, "Bal: KES 50.00"},
		{packed("Your balance is 123.45 KES"), 15, "Your balance is 123.45 KES"},
		{packed("Crédit: 12,50 EUR"), 15, "Crédit: 12,50 EUR"},
		{fmt.Sprintf("%X", ucs2.Encode([]rune("Баланс: 10 руб"))), 72, "Баланс: 10 руб"},
		{fmt.Sprintf("%X", ucs2.Encode([]rune("Saldo 5,00"))), 15, "Saldo 5,00"}, // AT+CSCS="UCS2"
		{"12345678", 15, "12345678"},
		{"ABCD1234", 15, "ABCD1234"},
		{"48656C6C6F", 0x44, "Hello"}, // 8-bit
	} {
		if got := decodeUSSD(c.in, c.dcs); got != c.want {
			t.Errorf("decodeUSSD(%q, %d) = %q, want %q", c.in, c.dcs, got, c.want)
		}
	}
}

func TestParseCUSD(t *testing.T) {
	for _, c := range []struct {
		line string
		want USSDReply
	}{
		{`+CUSD: 4`, USSDReply{Status: 4, DCS: 15}},
		{`+CUSD: 0,"Done",15`, USSDReply{0, "Done", 15}},
		{`+CUSD: 1,"1. A` + string(lineMark) + `2. B",15`, USSDReply{1, "1. A\n2. B", 15}},
		{`+CUSD:2,"Bye"`, USSDReply{2, "Bye", 15}},
	} {
		if got, err := parseCUSD(c.line); err != nil || got != c.want {
			t.Errorf("parseCUSD(%q) = %+v, %v; want %+v", c.line, got, err, c.want)
		}
	}
	if _, err := parseCUSD(`+CUSD: x`); err == nil {
		t.Error("bad state taken")
	}
}

// The lines of a +CUSD menu are joined whatever the reads cut, and
// nothing else is changed.
func TestCUSDLines(t *testing.T) {
	in := "\r\nOK\r\n\r\n+CUSD: 1,\"1. Balance\r\n2. Bundles\",15\r\n+CMTI: \"SM\",3\r\n\"quoted\r\nline\"\r\n"
	want := "\r\nOK\r\n\r\n+CUSD: 1,\"1. Balance\x1f2. Bundles\",15\r\n+CMTI: \"SM\",3\r\n\"quoted\r\nline\"\r\n"
	for _, chunk := range []int{1, 2, 3, 7, 64} {
		j := newCUSDLines(struct {
			io.Reader
			io.Writer
		}{&chunky{data: []byte(in), n: chunk}, io.Discard})
		got, err := io.ReadAll(j)
		if err != nil || string(got) != want {
			t.Fatalf("chunks of %d: %q, %v", chunk, got, err)
		}
	}
	// A quote never closed stops joining after maxQuoted bytes.
	long := "+CUSD: 1,\"" + strings.Repeat("x\r\n", maxQuoted+10) + "OK\r\n"
	got, _ := io.ReadAll(newCUSDLines(struct {
		io.Reader
		io.Writer
	}{strings.NewReader(long), io.Discard}))
	if !bytes.HasSuffix(got, []byte("\r\nOK\r\n")) {
		t.Fatalf("an unclosed quote swallowed the rest: ...%q", got[len(got)-20:])
	}
}

type chunky struct {
	data []byte
	n    int
}

func (c *chunky) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), c.n)], c.data)
	c.data = c.data[n:]
	return n, nil
}

// A modem that wants USSD strings as packed GSM 7-bit hex (Huawei) and
// answers so: the text is refused, the packed form learned and decoded.
func TestUSSDPackedModem(t *testing.T) {
	r := newRig(t, nil)
	r.waitState(StateReady)
	r.sim.SetFaults(sim.Faults{USSDPacked: true})
	got, err := r.modem.USSD(context.Background(), sim.MenuCode, []string{"2", "2"})
	if err != nil {
		t.Fatal(err)
	}
	want := []USSDReply{{USSDMenu, "1. Balance\n2. Bundles", 15}, {USSDMenu, "1. Daily\n2. Weekly", 15}, {USSDDone, "Weekly bundle activated", 15}}
	if !slices.Equal(got, want) {
		t.Fatalf("screens\n%+v\nwant\n%+v", got, want)
	}
	if codes := r.sim.USSDCodes(); !slices.Equal(codes, []string{sim.MenuCode, "2", "2"}) {
		t.Fatalf("the network got %q", codes)
	}
	cmds := strings.Join(r.sim.Commands(), "\n")
	if !strings.Contains(cmds, `AT+CUSD=1,"*123#",15`) || !strings.Contains(cmds, `AT+CUSD=1,"AA986C3602",15`) || strings.Count(cmds, `AT+CUSD=1,"32",15`) != 2 {
		t.Fatalf("commands:\n%s", cmds)
	}
}
