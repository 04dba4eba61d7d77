package main

import (
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
