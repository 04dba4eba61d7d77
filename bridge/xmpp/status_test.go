package xmpp

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestStatusTextBalance(t *testing.T) {
	var st map[string]any
	json.Unmarshal([]byte(`{"gateway_id": "gw1", "modems": {"m1": {"state": "ready", "signal_dbm": -71,
		"balance": {"amount": 20, "currency": "KES", "low": true, "paused": "balance 20.00 KES is below low_balance 50"}},
		"m2": {"state": "ready", "balance": {"error": "no answer"}}}}`), &st)
	got := statusText(st)
	for _, want := range []string{"modem m1: ready, signal -71 dBm, balance 20.00 KES, sending paused: balance 20.00 KES is below low_balance 50", "\nmodem m2: ready\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("status lacks %q:\n%s", want, got)
		}
	}
}
