package main

import (
	"github.com/outpost-sms/outpost/bridge"
	"github.com/outpost-sms/outpost/config"
)

// keywordSets turns [keywords] into the router's sets: English first (the
// built-in words and what [keywords] adds), then each
// [[keywords.language]], whose empty confirmations are the English ones.
func keywordSets(k config.Keywords) []bridge.KeywordSet {
	sets := []bridge.KeywordSet{{Name: "en", Stop: k.Stop, Start: k.Start, Join: k.Join, Leave: k.Leave,
		StopReply: k.StopReply, StartReply: k.StartReply, JoinReply: k.JoinReply, LeaveReply: k.LeaveReply}}
	or := func(s, def string) string {
		if s == "" {
			return def
		}
		return s
	}
	for _, l := range k.Languages {
		sets = append(sets, bridge.KeywordSet{Name: l.Name, Stop: l.Stop, Start: l.Start, Join: l.Join, Leave: l.Leave,
			StopReply: or(l.StopReply, k.StopReply), StartReply: or(l.StartReply, k.StartReply),
			JoinReply: or(l.JoinReply, k.JoinReply), LeaveReply: or(l.LeaveReply, k.LeaveReply)})
	}
	return sets
}
