package config

import (
	"strings"
	"testing"
	"time"
)

func TestModemBalanceKeys(t *testing.T) {
	c, err := Parse("good.toml", []byte(`
[[modem]]
id = "m1"
type = "sim"
balance_ussd = "*100#"
low_balance = 50
pause_on_low_balance = true
low_balance_alert = ["mailto:ops@example.org", "+254700000001"]
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if m := c.Modems[0]; m.BalanceEvery.Duration != 6*time.Hour || m.LowBalance != 50 || !m.PauseOnLowBalance || len(m.LowBalanceAlert) != 2 {
		t.Fatalf("modem %+v", m)
	}
	c, err = Parse("bad.toml", []byte(`
[[modem]]
id = "m1"
type = "sim"
low_balance = 5
[[modem]]
id = "m2"
type = "sim"
balance_ussd = "*100\"#"
balance_regex = "([0-9"
balance_every = "10ms"
[[modem]]
id = "m3"
type = "sim"
balance_ussd = "*100#"
balance_regex = "[0-9]+"
low_balance_alert = ["mailto:ops@example.org"]
`))
	if err != nil {
		t.Fatal(err)
	}
	err = c.Validate()
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{
		"modem 1: low_balance: needs balance_ussd", `modem 2: balance_ussd = "*100\"#": must be a USSD code`,
		"modem 2: balance_regex", "is not a regular expression", `modem 2: balance_every = "10ms": must be at least 1s`,
		`modem 3: balance_regex = "[0-9]+": must capture the amount`, "modem 3: low_balance = 0: is needed for",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}
