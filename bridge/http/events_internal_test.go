package http

import (
	"context"
	"testing"
)

// A subscriber that reads nothing never blocks the publisher: what does
// not fit is dropped and the subscriber told to reload.
func TestEventsNeverBlock(t *testing.T) {
	var e events
	e.subs = map[*subscriber]bool{}
	e.done = context.Background().Done()
	slow := &subscriber{ch: make(chan event, eventBuffer), dropped: make(chan struct{}, 1), closed: make(chan struct{})}
	e.add(slow)
	for i := 0; i < 10*eventBuffer; i++ {
		e.publish(event{name: "status", data: []byte("{}")})
	}
	if len(slow.ch) != eventBuffer || len(slow.dropped) != 1 {
		t.Errorf("buffered %d, dropped signal %d: want %d and 1", len(slow.ch), len(slow.dropped), eventBuffer)
	}
	e.closeSession("")
	select {
	case <-slow.closed:
		t.Error("closeSession(\"\") closed a token's stream")
	default:
	}
	slow.session, slow.user = "h1", "ann"
	e.closeUser("ann")
	<-slow.closed
}
