package config

import (
	"strings"
	"testing"
	"time"
)

func TestModemRoutingKeys(t *testing.T) {
	c, err := Check("r.toml", []byte(`[[modem]]
id = "m1"
type = "sim"
prefixes = ["+25470", "+25471"]
rate = "6/min"
daily_limit = 200
jitter = "2s"
[[modem]]
id = "m2"
type = "sim"
send = false
`))
	if err != nil {
		t.Fatal(err)
	}
	m := c.Modems[0]
	if n, per, _ := ParseRate(m.Rate); n != 6 || per != time.Minute || m.DailyLimit != 200 || m.Jitter.Duration != 2*time.Second || len(m.Prefixes) != 2 || !m.CanSend() || c.Modems[1].CanSend() {
		t.Errorf("read %+v / %+v", m, c.Modems[1])
	}
	for rate, want := range map[string]time.Duration{"1/s": time.Second, "100/h": time.Hour, "10 / minute": time.Minute} {
		if _, per, err := ParseRate(rate); err != nil || per != want {
			t.Errorf("%q: %s, %v", rate, per, err)
		}
	}
	_, err = Check("bad.toml", []byte(`[[modem]]
id = "m1"
type = "sim"
prefixes = ["25470", "+25470", "+25470"]
rate = "6 per minute"
daily_limit = -1
jitter = "1h"
number = "+254700000071"
[[modem]]
id = "m2"
type = "sim"
rate = "0/min"
number = "254700000071"
[[modem]]
id = "m3"
type = "sim"
send = false
rate = "1/s"
`))
	for _, want := range []string{
		`modem 1: prefixes = "25470": must be "+" and the first digits`,
		`modem 1: prefixes = "+25470": is listed twice`,
		`modem 1: rate = "6 per minute": want a count per unit such as "6/min"`,
		`modem 1: daily_limit = -1: must be 0 (no limit) or more`,
		`modem 1: jitter = "1h0m0s": must be between 0 and 10m`,
		`modem 2: rate = "0/min": the count must be at least 1`,
		`modem 3: send = false: a receive-only modem sends nothing`,
		// Two simulated modems of one number are one on the network.
		`modem 2: number = "254700000071": is modem m1's number`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}
