package main

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/outpost-sms/outpost/hw"
)

// printStoreAndCalls prints, under outpost status's modem table, each
// modem's message store use (with its warning) and its calls.
func printStoreAndCalls(modems map[string]json.RawMessage) {
	var ids []string
	for id := range modems {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		var st hw.Status
		if json.Unmarshal(modems[id], &st) != nil {
			continue
		}
		if s := st.Storage; s.Total > 0 {
			fmt.Printf("\nmodem %s: message store %s %d of %d used", id, s.Memory, s.Used, s.Total)
			if s.Warning != "" {
				fmt.Printf(": %s", printable(s.Warning, false))
			}
			if s.TimesFull > 0 {
				fmt.Printf(" (found full %d time(s), %d message(s) cleared since start)", s.TimesFull, s.Cleared)
			}
			fmt.Println()
		}
		if st.Calls > 0 {
			fmt.Printf("modem %s: %d call(s) since start, the last %s\n", id, st.Calls, printable(st.LastCall, false))
		}
	}
}
