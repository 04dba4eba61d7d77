package bridge

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/outpost-sms/outpost/store"
)

// A send addressed to mqtt or hub is published as sms/in: no modem
// received it, so "modem" and "state" are left out rather than empty, and
// data for an application port keeps its port.
func TestInboundPayloadOfASend(t *testing.T) {
	m := store.Message{ID: "s1", Direction: store.Out, FromAddr: "mqtt:app", Data: []byte{0xca, 0xfe}, Port: 2948, Channel: "mqtt", Kind: "data"}
	b, _ := json.Marshal(NewInboundPayload(m, ""))
	s := string(b)
	if strings.Contains(s, `"modem"`) || strings.Contains(s, `"state"`) || !strings.Contains(s, `"port":2948`) || !strings.Contains(s, `"data_hex":"CAFE"`) || !strings.Contains(s, `"from":"mqtt:app"`) {
		t.Errorf("sms/in of a send: %s", s)
	}
	in := store.Message{ID: "i1", Direction: store.In, Peer: "+15555550100", Modem: "sim0", State: "complete", Text: new("hi")}
	b, _ = json.Marshal(NewInboundPayload(in, ""))
	if s := string(b); !strings.Contains(s, `"modem":"sim0"`) || !strings.Contains(s, `"state":"complete"`) || strings.Contains(s, `"port"`) {
		t.Errorf("sms/in of an inbound SMS: %s", s)
	}
}
