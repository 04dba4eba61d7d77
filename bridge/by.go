package bridge

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"strings"
)

// Who asks, for the audit log. The CLI and HTTP name their caller (the
// body's "by", else the X-Outpost-By header); on MQTT who asks is always
// the client, mqtt:<user>/<client id>, as the broker authenticated it:
// a "by" in the payload is only what the client says, kept as a detail
// (`mqtt:ops/opspub (for "user root")`), never who.

// MaxBy bounds a "by".
const MaxBy = 100

// ClaimedBy is who the audit log records for a request of channel from
// caller (who the front end knows asks) that says it is by by: by itself
// on the CLI and HTTP's socket, the caller with by as a detail on MQTT
// and for an HTTP token ("token:NAME"); the caller when by is empty.
func ClaimedBy(channel, caller, by string) string {
	by = strings.TrimSpace(by)
	if len(by) > MaxBy {
		by = strings.ToValidUTF8(by[:MaxBy], "")
	}
	switch {
	case by == "":
		return caller
	case channel == "mqtt" || strings.HasPrefix(caller, "token:"):
		return caller + " (for " + strconv.Quote(by) + ")"
	}
	return by
}

// WithBy gives ctx (of WithCaller) the "by" of a request, as ClaimedBy
// reads it.
func WithBy(ctx context.Context, by string) context.Context {
	if strings.TrimSpace(by) == "" {
		return ctx
	}
	ch := origin(ctx, "api")
	return context.WithValue(ctx, callerKey{}, ClaimedBy(ch, callerOf(ctx, ch), by))
}

// takeBy takes a "by" out of a JSON object (the request of an operation
// whose fields do not include it). A body that is not an object is given
// back as it is, for the decoder to refuse.
func takeBy(body []byte) ([]byte, string) {
	if !bytes.Contains(body, []byte(`"by"`)) {
		return body, ""
	}
	var m map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if dec.Decode(&m) != nil || dec.More() {
		return body, ""
	}
	raw, ok := m["by"]
	var by string
	if !ok || json.Unmarshal(raw, &by) != nil {
		return body, ""
	}
	delete(m, "by")
	out, _ := json.Marshal(m)
	return out, by
}

// DecodeAdminBy is DecodeAdmin for a request that may also say who asks
// ("by", whatever fields v has): it returns the "by".
func DecodeAdminBy(body []byte, v any) (by string, err error) {
	body, by = takeBy(body)
	return by, DecodeAdmin(body, v)
}

// afterJSON checks that nothing but white space follows the JSON value
// dec read from body (a second object, or text, is refused as sms/send
// refuses it: it is not what the client meant to send).
func afterJSON(dec *json.Decoder, body []byte) error {
	if len(bytes.TrimSpace(body[dec.InputOffset():])) > 0 {
		return invalid("bad JSON: something after the object: send one JSON object")
	}
	return nil
}
