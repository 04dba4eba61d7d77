package config

import (
	"strings"
	"testing"
)

// TestKeywordTraps (#10): config check lists, with the other problems, a
// route whose keyword is a people keyword (an SMS HELP would opt its
// sender out before the route sees it), an unknown placeholder in any
// keyword reply ({topik}, {topic} in a STOP's reply, where there is
// none), and one word for two actions across languages (or a language
// reusing a default word, built-in or [keywords], for another action).
func TestKeywordTraps(t *testing.T) {
	_, err := Check("f.toml", []byte(`[keywords]
stop = ["HELP"]
join_reply = "Joined {topik}"
stop_reply = "Bye from {topic}"
leave_reply = "Left {topic"
[[keywords.language]]
name = "sw"
join = ["INGIA"]
start_reply = "Karibu {jina}"
[[keywords.language]]
name = "fr"
leave = ["INGIA"]
stop = ["JOIN"]
start = ["HELP"]
[[route]]
keyword = "HELP"
reply = "Call 112."
[[route]]
keyword = "join"
tag = "j"
[[route]]
keyword = "INFO"
reply = "Info: {arg} {args}"
`))
	for _, want := range []string{
		`route 1: keyword = "HELP": is a stop word of [keywords]`,
		`route 2: keyword = "join": is a join word of [keywords]`,
		`keywords.join_reply = "Joined {topik}": unknown placeholder {topik} (known: {topic})`,
		`keywords.stop_reply = "Bye from {topic}": unknown placeholder {topic} (this reply has none)`,
		`keywords.leave_reply = "Left {topic": a "{" without its "}"`,
		`keywords.language 1: start_reply = "Karibu {jina}": unknown placeholder {jina}`,
		`keywords.language 2: leave = "INGIA": is already a join word (keywords.language 1)`,
		`keywords.language 2: stop = "JOIN": is already a join word (built in)`,
		`keywords.language 2: start = "HELP": is already a stop word (keywords)`,
		`route 3: reply = "Info: {arg} {args}": unknown placeholder {args} (known: {arg})`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in\n%v", want, err)
		}
	}
	// What is right passes: a route's {arg}, a language's own {topic}, a
	// word repeated for the same action.
	_, err = Check("f.toml", []byte(`[keywords]
stop = ["ACHA"]
[[keywords.language]]
name = "sw"
stop = ["ACHA"]
join = ["INGIA"]
join_reply = "Umejiunga na {topic}."
[[route]]
keyword = "INFO"
reply = "Info: {arg}"
`))
	if err != nil {
		t.Errorf("a good config: %v", err)
	}
}

// TestCountryCode: [sms] country_code is 1–3 digits not starting with 0
// (an optional +), or "" (the default: not known).
func TestCountryCode(t *testing.T) {
	for cc, ok := range map[string]bool{"": true, "254": true, "+1": true, "0254": false, "2544": false, "ke": false} {
		c, err := Check("f.toml", []byte("[sms]\ncountry_code = \""+cc+"\"\n"))
		if ok && (err != nil || c.SMS.CountryCode != cc) || !ok && (err == nil || !strings.Contains(err.Error(), "sms.country_code")) {
			t.Errorf("country_code %q: %+v %v", cc, c.SMS, err)
		}
	}
}
