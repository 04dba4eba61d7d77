package mqtt

import (
	"log/slog"
	"testing"

	mochi "github.com/mochi-mqtt/server/v2"
)

func TestCovers(t *testing.T) {
	for _, c := range []struct {
		rule, topic string
		want        bool
	}{
		{"#", "a/b", true},
		{"#", "#", true},
		{"field/#", "field", true},
		{"field/#", "field/a/b", true},
		{"field/#", "fields/a", false},
		{"field/+/x", "field/a/x", true},
		{"field/+/x", "field/a/y", false},
		{"field/+/x", "field/+/x", true},
		{"field/a/x", "field/+/x", false}, // the subscription reaches further
		{"field/a/#", "field/#", false},
		{"field/a", "field/a/b", false},
		{"field/a/b", "field/a", false},
	} {
		if got := covers(c.rule, c.topic); got != c.want {
			t.Errorf("covers(%q, %q) = %v, want %v", c.rule, c.topic, got, c.want)
		}
	}
}

// TestACLPatternNames: %c and %u stand for one topic level; a client id
// or user name with a wildcard or a separator cannot widen a rule.
func TestACLPatternNames(t *testing.T) {
	h := newAuthHook(false, nil, []ACL{{User: "*", Topic: "devices/%c/#", Access: "readwrite"}, {User: "*", Topic: "users/%u", Access: "read"}},
		slog.New(slog.DiscardHandler))
	client := func(id, user string) *mochi.Client {
		cl := &mochi.Client{ID: id}
		cl.Properties.Username = []byte(user)
		return cl
	}
	for _, c := range []struct {
		id, user, topic string
		write, want     bool
	}{
		{"dev1", "field1", "devices/dev1/temp", true, true},
		{"dev1", "field1", "devices/dev2/temp", true, false},
		{"#", "field1", "devices/dev2/temp", true, false},
		{"+", "field1", "devices/dev2/temp", true, false},
		{"a/b", "field1", "devices/a/b/temp", true, false},
		{"dev1", "field1", "users/field1", false, true},
		{"dev1", "#", "users/anyone", false, false},
	} {
		if got := h.OnACLCheck(client(c.id, c.user), c.topic, c.write); got != c.want {
			t.Errorf("client %q user %q on %q (write %v): %v, want %v", c.id, c.user, c.topic, c.write, got, c.want)
		}
	}
}
