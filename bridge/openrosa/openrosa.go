// Package openrosa is the connector that submits received forms to an
// OpenRosa Form Submission API endpoint (ODK Central, KoboToolbox, Ona and
// the like): an HTTP POST of a multipart body whose xml_submission_file
// part is the instance. The hub queues and retries each submission like
// any other delivery; a server's 4xx answer (other than 408 and 429) is
// final. No answer at all, 408, 429, 502, 503 and 504 mean the server is
// unavailable: the submission waits, its attempts not used up, and the
// dispatcher waits for the server. Anything else (500, say) is retried and
// counted. It brings nothing in.
package openrosa

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"time"

	"github.com/outpost-sms/outpost/bridge"
	"github.com/outpost-sms/outpost/store"
)

// Options configure the connector.
type Options struct {
	// URL is the submission endpoint, e.g.
	// https://central.example.org/v1/key/TOKEN/projects/1/submission.
	URL string
	// User and Password, when set, are sent with HTTP basic auth.
	User, Password string
	// Timeout bounds one submission (default 60s).
	Timeout time.Duration
}

// outage are the answers that say the server cannot take submissions now,
// whatever they are: not counted toward giving up on one.
var outage = map[int]bool{
	http.StatusRequestTimeout: true, http.StatusTooManyRequests: true, http.StatusBadGateway: true,
	http.StatusServiceUnavailable: true, http.StatusGatewayTimeout: true,
}

// Connector submits forms.
type Connector struct {
	opt    Options
	client *http.Client
}

// New returns a connector.
func New(opt Options) *Connector {
	if opt.Timeout <= 0 {
		opt.Timeout = time.Minute
	}
	return &Connector{opt: opt, client: &http.Client{Timeout: opt.Timeout}}
}

// Name implements bridge.Connector.
func (c *Connector) Name() string { return "openrosa" }

// Scheme implements bridge.Addressed: "openrosa" names the server.
func (c *Connector) Scheme() string { return bridge.SchemeOpenRosa }

// Validate implements bridge.Validator: a send request carries no form
// submission, so there is nothing to submit.
func (c *Connector) Validate(*bridge.SendRequest) error {
	return errors.New("openrosa: the OpenRosa server takes form submissions (inbound forms are routed to it), not send requests")
}

// Run implements bridge.Connector: nothing comes in this way.
func (c *Connector) Run(ctx context.Context, _ *bridge.Router) error {
	<-ctx.Done()
	return nil
}

// Deliver implements bridge.Connector: it submits the instance of a form
// message.
func (c *Connector) Deliver(ctx context.Context, m store.Message, d store.Delivery) (bridge.Outcome, error) {
	if m.FormID == "" || m.Text == nil {
		return bridge.Outcome{}, bridge.Permanent(fmt.Errorf("message %s carries no form", m.ID))
	}
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="xml_submission_file"; filename="submission.xml"`)
	h.Set("Content-Type", "text/xml")
	part, _ := w.CreatePart(h)
	io.WriteString(part, *m.Text)
	w.Close()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.opt.URL, &body)
	if err != nil {
		return bridge.Outcome{}, bridge.Permanent(err)
	}
	req.Header.Set("Content-Type", w.FormDataContentType())
	req.Header.Set("X-OpenRosa-Version", "1.0")
	req.Header.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	if c.opt.User != "" {
		req.SetBasicAuth(c.opt.User, c.opt.Password)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		// No answer (refused, reset, timed out, no route, no name): the
		// server is down, not the submission bad.
		return bridge.Outcome{}, bridge.Outage(fmt.Errorf("submit form %s: %w", m.FormID, err))
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	switch {
	case resp.StatusCode == http.StatusCreated || resp.StatusCode == http.StatusAccepted || resp.StatusCode == http.StatusOK:
		return bridge.Outcome{State: store.Delivered, Detail: fmt.Sprintf("submitted to %s: %s", c.opt.URL, resp.Status)}, nil
	case resp.StatusCode == http.StatusConflict:
		// ODK Central: an instance with this instanceID is already there,
		// so an earlier attempt got through.
		return bridge.Outcome{State: store.Delivered, Detail: "already submitted (409)"}, nil
	case resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests:
		return bridge.Outcome{}, bridge.Permanent(fmt.Errorf("submit form %s: %s: %s", m.FormID, resp.Status, bytes.TrimSpace(answer)))
	case outage[resp.StatusCode]:
		return bridge.Outcome{}, bridge.Outage(fmt.Errorf("submit form %s: %s: %s", m.FormID, resp.Status, bytes.TrimSpace(answer)))
	default:
		return bridge.Outcome{}, fmt.Errorf("submit form %s: %s: %s", m.FormID, resp.Status, bytes.TrimSpace(answer))
	}
}
