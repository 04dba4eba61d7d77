package mqtt

import (
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// The broker keeps no $SYS topics: mochi's, republished every second and
// copied every second with every retained message, were most of the
// daemon's garbage at idle (see sysNever).
func TestNoSysTopics(t *testing.T) {
	b := newTestBroker(t, Options{})
	sys := func() []string {
		var out []string
		for topic := range b.c.server.Topics.Retained.GetAll() {
			if strings.HasPrefix(topic, "$SYS") {
				out = append(out, topic)
			}
		}
		return out
	}
	if s := sys(); len(s) > 0 {
		t.Fatalf("retained after start: %v", s)
	}
	// mochi's default republishes them every second.
	time.Sleep(1500 * time.Millisecond)
	if s := sys(); len(s) > 0 {
		t.Fatalf("retained again after 1.5s: %v", s)
	}
	// The gateway's own retained state is still there.
	if _, ok := b.c.server.Topics.Retained.GetAll()["outpost/gw1/status"]; !ok {
		t.Error("outpost/gw1/status is not retained")
	}
	// A client that asks for them gets nothing.
	c := b.paho(t, "sys-reader")
	got := make(chan string, 64)
	if tok := c.Subscribe("$SYS/#", 1, func(_ paho.Client, m paho.Message) { got <- m.Topic() }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	select {
	case topic := <-got:
		t.Fatalf("got %s", topic)
	case <-time.After(1500 * time.Millisecond):
	}
}
