package bridge

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Priorities are the names of priorities, as urgency, on the numeric
// scale (-1 to 9, higher goes first): low -1, normal 0 (the default: a
// request without one), high 5, urgent 9. Numbers still work, so clients
// of the 0–9 scale keep theirs.
var Priorities = []struct {
	Name  string
	Value int
}{{"low", -1}, {"normal", 0}, {"high", 5}, {"urgent", 9}}

// MinPriority is the lowest "priority" of a send request (low).
const MinPriority = -1

// ParsePriority reads a priority: a name (low, normal, high, urgent; any
// case) or a number from MinPriority to MaxPriority.
func ParsePriority(s string) (int, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	for _, p := range Priorities {
		if p.Name == t {
			return p.Value, nil
		}
	}
	n, err := strconv.Atoi(t)
	if err != nil || n < MinPriority || n > MaxPriority {
		return 0, priorityError{fmt.Sprintf(`"priority" %q: give low, normal, high, urgent, or a number from %d to %d (higher goes first)`, s, MinPriority, MaxPriority)}
	}
	return n, nil
}

// priorityError is a "priority" that is neither a name nor a number in
// range: ParseSend says it as it is, not as bad JSON.
type priorityError struct{ msg string }

func (e priorityError) Error() string { return e.msg }

// PriorityName is how a priority is said: its name, or its number with
// the name of the priority range it is in ("7 (high)").
func PriorityName(p int) string {
	name := ""
	for _, q := range Priorities {
		if p == q.Value {
			return q.Name
		}
		if p > q.Value {
			name = q.Name
		}
	}
	return fmt.Sprintf("%d (%s)", p, name)
}

// Priority is the JSON "priority" of a send request: a number, or a name
// (ParsePriority). It is written as the number.
type Priority int

// UnmarshalJSON reads a number or a name.
func (p *Priority) UnmarshalJSON(b []byte) error {
	var s string
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	} else {
		s = string(b)
	}
	n, err := ParsePriority(s)
	if err != nil && b[0] != '"' {
		// A number is said as written: "priority" 10, not "10".
		return priorityError{fmt.Sprintf(`"priority" %s: give low, normal, high, urgent, or a number from %d to %d (higher goes first)`, b, MinPriority, MaxPriority)}
	}
	if err != nil {
		return err
	}
	*p = Priority(n)
	return nil
}
