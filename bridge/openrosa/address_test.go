package openrosa_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outpost-sms/outpost/bridge"
	"github.com/outpost-sms/outpost/bridge/openrosa"
	"github.com/outpost-sms/outpost/store"
)

// A send request to "openrosa" is refused before it is stored (it carries
// no form to submit), and a route may name the server by its address.
func TestOpenRosaAddress(t *testing.T) {
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "outpost.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	router := bridge.New(st, nil)
	router.Add(openrosa.New(openrosa.Options{URL: "http://127.0.0.1:1/submission"}))
	_, err = router.Submit(context.Background(), bridge.SendRequest{ID: "s1", To: []string{"openrosa"}, Text: "x", Source: "test"})
	if !errors.Is(err, bridge.ErrInvalid) || !strings.Contains(err.Error(), "the OpenRosa server takes form submissions") {
		t.Errorf("send to openrosa: %v", err)
	}
	if err := st.View(context.Background(), func(tx *store.Tx) error { _, err := tx.Message("s1"); return err }); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a refused send was stored: %v", err)
	}
	router.FormRoutes = []string{"openrosa", "xmpp:forms@example.org"}
	if err := router.CheckRoutes(); err == nil || !strings.Contains(err.Error(), "xmpp:forms@example.org: no connector delivers to xmpp: addresses") || strings.Contains(err.Error(), "routes: openrosa") {
		t.Errorf("CheckRoutes: %v", err)
	}
}
