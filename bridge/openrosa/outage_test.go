package openrosa_test

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outpost-sms/outpost/bridge"
	"github.com/outpost-sms/outpost/bridge/openrosa"
	"github.com/outpost-sms/outpost/store"
)

// flaky accepts connections and, while down, drops each at once (the
// client gets no answer), counting them.
type flaky struct {
	net.Listener
	down    atomic.Bool
	dropped atomic.Int32
}

func (f *flaky) Accept() (net.Conn, error) {
	for {
		c, err := f.Listener.Accept()
		if err != nil || !f.down.Load() {
			return c, err
		}
		f.dropped.Add(1)
		c.Close()
	}
}

// A server that does not answer for longer than MaxAttempts tries is
// waited for: the submission is not failed and goes through, as attempt
// 1, when the server is back; a 500 still counts.
func TestServerDownIsWaitedFor(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := &flaky{Listener: ln}
	fl.down.Store(true)
	srv := &server{codes: []int{http.StatusInternalServerError, http.StatusCreated}}
	hs := &http.Server{Handler: srv}
	go hs.Serve(fl)
	t.Cleanup(func() { hs.Close() })

	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "outpost.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	router := bridge.New(st, nil)
	router.RetryMin, router.RetryMax = 5*time.Millisecond, 20*time.Millisecond
	router.MaxAttempts = 3
	router.FormRoutes = []string{"openrosa"}
	router.Add(openrosa.New(openrosa.Options{URL: "http://" + ln.Addr().String() + "/submission"}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { router.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; st.Close() })

	id := storeForm(t, router, st)
	deadline := time.Now().Add(10 * time.Second)
	for fl.dropped.Load() < 3*int32(router.MaxAttempts) {
		if time.Now().After(deadline) {
			t.Fatalf("only %d submissions tried in 10 s", fl.dropped.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	v, err := router.Message(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if d := v.Deliveries[0]; d.State == store.Failed || d.Attempts > 1 {
		t.Fatalf("after %d tries with no answer: %+v", fl.dropped.Load(), d)
	}
	fl.down.Store(false)
	d := waitDelivery(t, router, id, store.Delivered)
	if d.Attempts != 2 {
		t.Errorf("attempts %d, want 2: the outage not counted, the 500 counted, then 201", d.Attempts)
	}
}
