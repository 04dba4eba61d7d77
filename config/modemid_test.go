package config

import (
	"strings"
	"testing"
	"time"
)

// A serial modem may be found by IMEI or ICCID instead of its device;
// the values are checked, and the history and reset defaults are set.
func TestModemIdentityAndHealing(t *testing.T) {
	c, err := Check("f.toml", []byte(`[[modem]]
id = "m1"
type = "serial"
imei = "350015555550123"
scan = ["/dev/ttyUSB*", "/tmp/sims/*.pty"]
[[modem]]
id = "m2"
type = "serial"
iccid = "8900101015555550201F"
resets_per_hour = -1
`))
	if err != nil {
		t.Fatal(err)
	}
	if m := c.Modems[0]; m.IMEI != "350015555550123" || len(m.Scan) != 2 || m.ResetsPerHour != 6 {
		t.Errorf("m1: %+v", m)
	}
	if m := c.Modems[1]; m.ICCID != "8900101015555550201F" || m.ResetsPerHour != -1 {
		t.Errorf("m2: %+v", m)
	}
	if c.SMS.HistoryEvery.Duration != 5*time.Minute || c.SMS.HistoryKeep.Duration != 7*24*time.Hour {
		t.Errorf("history defaults: %v, %v", c.SMS.HistoryEvery, c.SMS.HistoryKeep)
	}
	_, err = Check("f.toml", []byte(`[sms]
history_every = "10ms"
history_keep = "1m"
[[modem]]
type = "serial"
[[modem]]
type = "serial"
imei = "35-0015"
iccid = "12"
scan = ["relative/*"]
resets_per_hour = -2
[[modem]]
type = "sim"
imei = "350015555550123"
[[modem]]
type = "serial"
device = "/dev/ttyUSB0"
iccid = "8900101015555550201F"
`))
	for _, want := range []string{
		`modem 1: device = "": a serial modem needs a device path, or an imei or iccid`,
		`modem 2: imei = "35-0015": must be the modem's 15 digits`,
		`modem 2: iccid = "12": must be the SIM's 18 to 22 digits`,
		`modem 2: scan = "relative/*": must be absolute path patterns`,
		`modem 2: resets_per_hour = -2`,
		`modem 3: type = "sim": imei, iccid and scan find a "serial" modem`,
		// The device would win, and the modem on it be used whoever it is.
		`modem 4: device = "/dev/ttyUSB0": give the device or an imei or iccid to find it by, not both`,
		`sms.history_every = "10ms": must be at least 1s`,
		`sms.history_keep = "1m0s": must be at least 1h`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}
