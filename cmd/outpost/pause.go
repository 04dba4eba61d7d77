package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net/url"
	"os"

	"github.com/outpost-sms/outpost/bridge"
)

const pauseUsage = `usage: outpost pause NAME
       outpost resume NAME

NAME is a modem's id or a connector (sms, hub, mqtt, email, xmpp, webhook,
openrosa: those the config runs). A paused modem sends nothing (other
modems take its messages, or they wait queued) but still receives; a
paused connector delivers nothing (its messages wait queued, their
attempts not used, and go on in order on resume). A pause lasts across
restarts until outpost resume. outpost status lists what is paused.`

// cmdPause is outpost pause|resume NAME (POST /v1/pause/{name},
// /v1/resume/{name}).
func cmdPause(op string, args []string) int {
	fs := flag.NewFlagSet(op, flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON")
	mk := clientFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), pauseUsage)
		fs.PrintDefaults()
	}
	pos, code := parseArgs(fs, args, 1, 1)
	if code >= 0 {
		return code
	}
	c, err := mk()
	if err != nil {
		return fail(op, err)
	}
	var raw json.RawMessage
	if err := c.do("POST", "/v1/"+op+"/"+url.PathEscape(pos[0]), nil, &raw); err != nil {
		return fail(op, err)
	}
	if *asJSON {
		os.Stdout.Write(raw)
		return 0
	}
	var a bridge.PauseAnswer
	if err := json.Unmarshal(raw, &a); err != nil {
		return fail(op, err)
	}
	if a.Paused {
		fmt.Printf("%s %s paused: it sends nothing until outpost resume %s\n", a.Kind, a.Name, a.Name)
	} else {
		fmt.Printf("%s %s resumed\n", a.Kind, a.Name)
	}
	return 0
}
