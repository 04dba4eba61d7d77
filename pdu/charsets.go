package pdu

import "github.com/warthog618/sms/encoding/gsm7/charset"

// warthog618/sms v0.3.0 builds its character tables on first use, with no
// lock: two goroutines that decode or encode GSM 7-bit text for the first
// time at once race on a package variable and write the same map (a data
// race; Go can abort on concurrent map writes). The race detector caught
// it between the SMS connector and the simulated network in one daemon.
// Building every table here, before any goroutine runs, leaves later uses
// read-only.
func init() {
	charset.DefaultDecoder()
	charset.DefaultEncoder()
	charset.DefaultExtEncoder()
	for nli := charset.Start; nli < charset.End; nli++ {
		charset.NewDecoder(nli)
		charset.NewEncoder(nli)
		charset.NewExtEncoder(nli)
	}
}
