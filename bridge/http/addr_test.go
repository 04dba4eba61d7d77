package http_test

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outpost-sms/outpost/bridge"
	"github.com/outpost-sms/outpost/store"
)

// phones is a connector that delivers to tel: addresses (none is run here:
// the messages stay queued).
type phones struct{}

func (phones) Name() string                                    { return "sms" }
func (phones) Scheme() string                                  { return bridge.SchemeTel }
func (phones) Run(ctx context.Context, _ *bridge.Router) error { <-ctx.Done(); return nil }
func (phones) Deliver(context.Context, store.Message, store.Delivery) (bridge.Outcome, error) {
	return bridge.Outcome{State: store.Sent}, nil
}

// TestSendAddressesAndOrigin: POST /v1/messages refuses an address no
// connector delivers to (400, nothing stored) and GET /v1/messages/{id}
// shows where a message came from and what it carries.
func TestSendAddressesAndOrigin(t *testing.T) {
	router := newRouter(t)
	router.Add(phones{})
	call := request(t, router, filepath.Join(t.TempDir(), "outpost.sock"))

	code, b := call(http.MethodPost, "/v1/messages", `{"id": "m1", "to": ["+15555550100", "mailto:ops@example.org"], "text": "hi"}`)
	if want := `\"to\": mailto:ops@example.org: no connector delivers to mailto: addresses (configure [email])`; code != 400 || !strings.Contains(string(b), want) {
		t.Errorf("send to mailto: %d %s; want 400 with %s", code, b, want)
	}
	if code, b := call(http.MethodGet, "/v1/messages/m1", ""); code != 404 {
		t.Errorf("a refused send was stored: %d %s", code, b)
	}

	code, b = call(http.MethodPost, "/v1/messages", `{"id": "m2", "to": "tel:+15555550100", "text": "hi"}`)
	if code != 201 {
		t.Fatalf("send: %d %s", code, b)
	}
	code, b = call(http.MethodGet, "/v1/messages/m2", "")
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil || code != 200 {
		t.Fatalf("show: %d %s", code, b)
	}
	if v["channel"] != "http" || v["kind"] != "text" || v["peer"] != "+15555550100" {
		t.Errorf("show: %s", b)
	}
	if ds, _ := v["deliveries"].([]any); len(ds) != 1 || ds[0].(map[string]any)["recipient"] != "+15555550100" {
		t.Errorf("deliveries: %v", v["deliveries"])
	}
}
