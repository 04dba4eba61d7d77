package sim

import (
	"context"
	"fmt"
	"io"
	"net"
	"testing"
	"time"
)

// What the simulated modem remembers of its commands is bounded: the
// daemon runs it for as long as it runs.
func TestCommandsBounded(t *testing.T) {
	m := NewNetwork(nil).NewModem("+15555550123")
	a, b := net.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.Serve(ctx, b) }()
	go io.Copy(io.Discard, a)
	const n = 3 * keepCommands
	for i := range n {
		if _, err := fmt.Fprintf(a, "AT+CSQ;+X%d\r", i); err != nil {
			t.Fatal(err)
		}
	}
	last := fmt.Sprintf("AT+CSQ;+X%d", n-1)
	deadline := time.Now().Add(10 * time.Second)
	for got := m.Commands(); len(got) == 0 || got[len(got)-1] != last; got = m.Commands() {
		if time.Now().After(deadline) {
			t.Fatal("the last command was never recorded")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	a.Close()
	<-done
	got := m.Commands()
	if len(got) < keepCommands || len(got) >= 2*keepCommands {
		t.Fatalf("%d commands remembered of %d: want the latest %d to %d", len(got), n+1, keepCommands, 2*keepCommands)
	}
	if got[len(got)-keepCommands] != fmt.Sprintf("AT+CSQ;+X%d", n-keepCommands) {
		t.Fatalf("the latest %d are not all there: %q comes %d before the last", keepCommands, got[len(got)-keepCommands], keepCommands)
	}
}
