package bridge_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/outpost-sms/outpost/bridge"
	"github.com/outpost-sms/outpost/store"
)

// A group that lists a number twice sends it one SMS, and the history
// counts the number once and says it was listed twice; GroupNotes (the
// HTTP answer) says so too.
func TestGroupRepeatsCountedOnce(t *testing.T) {
	h, start := newHub(t, &fake{})
	h.Groups = map[string][]string{"nurses": {"+15555550101", "+15555550102", "+15555550101"}}
	start()
	id := submitReq(t, h, bridge.SendRequest{To: []string{"group:nurses"}, Text: "meeting at 3"})
	v := waitState(t, h, id, store.Sent)
	var to []string
	for _, d := range v.Deliveries {
		to = append(to, d.Recipient)
	}
	if want := []string{"+15555550101", "+15555550102"}; !slices.Equal(to, want) {
		t.Fatalf("delivered to %v, want %v", to, want)
	}
	want := "group nurses: 2 numbers; listed more than once, one delivery each: +15555550101"
	if !strings.Contains(details(v), want) {
		t.Errorf("history lacks %q:\n%s", want, details(v))
	}
	if got := h.GroupNotes([]string{"group:nurses", "+15555550103"}); len(got) != 1 || got[0] != want {
		t.Errorf("GroupNotes = %q, want [%q]", got, want)
	}
	if got := h.GroupNotes([]string{"+15555550103"}); got != nil {
		t.Errorf("GroupNotes of a send without a group = %q", got)
	}
}
