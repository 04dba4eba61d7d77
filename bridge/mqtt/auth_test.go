package mqtt

import "testing"

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
