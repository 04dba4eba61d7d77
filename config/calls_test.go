package config

import (
	"strings"
	"testing"
)

// [[modem]] calls, hangup_after, missed_call_message, storage_warn:
// defaults, and bad values refused with the field's path.
func TestModemCallsAndStorage(t *testing.T) {
	c, err := Check("f.toml", []byte("[[modem]]\ntype = \"sim\"\n"))
	if err != nil || c.Modems[0].Calls != "ignore" || c.Modems[0].HangupAfter != 2 || c.Modems[0].MissedCallMessage || c.Modems[0].StorageWarn != 80 {
		t.Fatalf("defaults: %+v, %v", c.Modems[0], err)
	}
	c, err = Check("f.toml", []byte("[[modem]]\ntype = \"sim\"\ncalls = \"hangup\"\nhangup_after = 1\nmissed_call_message = true\nstorage_warn = 90\n"))
	if err != nil || c.Modems[0].Calls != "hangup" || c.Modems[0].HangupAfter != 1 || !c.Modems[0].MissedCallMessage || c.Modems[0].StorageWarn != 90 {
		t.Fatalf("given: %+v, %v", c.Modems[0], err)
	}
	_, err = Check("f.toml", []byte("[[modem]]\ntype = \"sim\"\ncalls = \"answer\"\nhangup_after = -1\nstorage_warn = 120\n"))
	for _, want := range []string{`modem 1: calls = "answer": must be "ignore" or "hangup"`, `modem 1: hangup_after = -1: must be 1 to 30 rings`,
		`modem 1: storage_warn = 120: must be a percentage, 1 to 100`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in %v", want, err)
		}
	}
}
