package openrosa_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/outpost-sms/outpost/bridge"
	"github.com/outpost-sms/outpost/bridge/openrosa"
	"github.com/outpost-sms/outpost/store"
)

// server is an OpenRosa submission endpoint that answers with the codes
// it is given, in turn, and records what it got.
type server struct {
	mu    sync.Mutex
	codes []int
	got   []string
	auth  []string
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	code := s.codes[0]
	if len(s.codes) > 1 {
		s.codes = s.codes[1:]
	}
	f, _, err := r.FormFile("xml_submission_file")
	if err != nil || r.Header.Get("X-OpenRosa-Version") != "1.0" {
		http.Error(w, "not an OpenRosa submission", http.StatusBadRequest)
		return
	}
	b, _ := io.ReadAll(f)
	s.got = append(s.got, string(b))
	u, p, _ := r.BasicAuth()
	s.auth = append(s.auth, u+":"+p)
	w.WriteHeader(code)
}

func (s *server) received() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.got...)
}

func run(t *testing.T, srv *server) (*bridge.Router, *store.Store) {
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "outpost.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	router := bridge.New(st, nil)
	router.RetryMin, router.RetryMax = 10*time.Millisecond, 50*time.Millisecond
	router.FormRoutes = []string{"openrosa"}
	router.Add(openrosa.New(openrosa.Options{URL: ts.URL + "/submission", User: "gw", Password: "pw"}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { router.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; st.Close() })
	return router, st
}

func storeForm(t *testing.T, router *bridge.Router, st *store.Store) string {
	xml := `<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<r id="f"><meta><instanceID>uuid:1</instanceID></meta></r>`
	m := &store.Message{Peer: "+15550001111", Text: &xml, Data: []byte("raw"), Coding: "xform", FormID: "f", InstanceID: "uuid:1", State: store.Complete}
	if err := st.Update(context.Background(), func(tx *store.Tx) error { return router.StoreInbound(tx, m, "test") }); err != nil {
		t.Fatal(err)
	}
	router.Wake("openrosa")
	return m.ID
}

func waitDelivery(t *testing.T, router *bridge.Router, id, state string) store.Delivery {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		v, err := router.Message(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if len(v.Deliveries) == 1 && v.Deliveries[0].State == state {
			return v.Deliveries[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries %+v, want one %s", v.Deliveries, state)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSubmitRetriedUntilAccepted(t *testing.T) {
	srv := &server{codes: []int{http.StatusServiceUnavailable, http.StatusCreated}}
	router, st := run(t, srv)
	id := storeForm(t, router, st)
	d := waitDelivery(t, router, id, store.Delivered)
	if d.Attempts != 1 {
		t.Errorf("attempts %d, want 1 (503: the server is unavailable, not counted; then 201)", d.Attempts)
	}
	got := srv.received()
	if len(got) != 2 || got[1] != `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+`<r id="f"><meta><instanceID>uuid:1</instanceID></meta></r>` {
		t.Errorf("server got %q", got)
	}
	if srv.auth[0] != "gw:pw" {
		t.Errorf("auth %q", srv.auth[0])
	}
}

func TestSubmitRefusedIsFinal(t *testing.T) {
	srv := &server{codes: []int{http.StatusForbidden}}
	router, st := run(t, srv)
	id := storeForm(t, router, st)
	d := waitDelivery(t, router, id, store.Failed)
	if d.Attempts != 1 || d.LastError == "" {
		t.Errorf("delivery %+v: a 403 is final and says why", d)
	}
}
