package main

import (
	"strings"
	"testing"
)

// TestSendControlCharactersAndCancelGroup drives the CLI against the real
// daemon and modem: a text with ESC is refused naming the character and
// its position (it went out as a raw GSM escape and came back as "ab");
// a tab goes out (in UCS-2: GSM has none) and comes back intact; a
// scheduled group message is cancelled destination by destination and
// the CLI says what it cancelled and, asked again, why nothing is left.
func TestSendControlCharactersAndCancelGroup(t *testing.T) {
	g := newGatewayWith(t, "", "[groups]\nteam = [\"+15555550100\", \"+15555550101\", \"+15555550102\"]\n")
	g.start()

	_, errs, code := g.cli("send", "--to", "+15555550100", "--text", "a\x1bb")
	if code != 1 || !strings.Contains(errs, `"text": character 2 is U+001B, a control character: only line feed (\n), carriage return (\r) and tab (\t) are allowed`) {
		t.Errorf("send with ESC: exit %d, %q", code, errs)
	}
	tab := "col1\tcol2"
	g.waitDelivered(g.send(tab))
	g.waitEcho(tab)

	id := g.send("later", "--to", "group:team", "--at", "1h")
	out, errs, code := g.cli("cancel", id, "--by", "tester")
	if code != 0 || strings.Count(out, ": cancelled\n") != 3 || !strings.Contains(out, "sms +15555550102: cancelled\n") ||
		!strings.HasSuffix(out, "cancelled 3 of 3 destinations\n") {
		t.Errorf("cancel: exit %d\n%s%s", code, out, errs)
	}
	_, errs, code = g.cli("cancel", id)
	if code != 1 || !strings.Contains(errs, "message "+id+": 3 cancelled: nothing left to cancel") {
		t.Errorf("cancel again: exit %d, %q", code, errs)
	}
}
