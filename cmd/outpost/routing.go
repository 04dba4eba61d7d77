package main

import (
	"fmt"
	"io"
	"maps"
	"slices"

	"github.com/outpost-sms/outpost/bridge"
	bsms "github.com/outpost-sms/outpost/bridge/sms"
	"github.com/outpost-sms/outpost/config"
)

// configureRouting gives the SMS connector the [[modem]]s' routing keys
// and the router the modems a send may not name.
func configureRouting(cfg config.Config, router *bridge.Router, sms *bsms.Connector) {
	sms.Modems, sms.Clock = map[string]bsms.ModemOptions{}, limitsClock()
	router.ReceiveOnly = map[string]bool{}
	for _, m := range cfg.Modems {
		n, per, _ := config.ParseRate(m.Rate) // checked with the config
		sms.Modems[m.ID] = bsms.ModemOptions{Prefixes: m.Prefixes, ReceiveOnly: !m.CanSend(), Rate: n, Per: per,
			DailyLimit: m.DailyLimit, Jitter: m.Jitter.Duration}
		router.ReceiveOnly[m.ID] = !m.CanSend()
	}
}

// routingNotes says, under the modems of outpost status, which of them
// hold parts back: rested after failing, or at a limit.
func routingNotes(w io.Writer, rs map[string]bsms.RouteState) {
	ids := slices.Sorted(maps.Keys(rs))
	for _, id := range ids {
		r := rs[id]
		switch {
		case r.RestedFor != "":
			fmt.Fprintf(w, "%s\trested for %s (%d rest(s)) after failing in a row: %s\n", id, r.RestedFor, r.Rests, printable(r.LastError, false))
		case r.Waiting != "":
			fmt.Fprintf(w, "%s\twaiting: %s\n", id, r.Waiting)
		}
	}
}
