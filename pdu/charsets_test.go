package pdu

import (
	"os"
	"os/exec"
	"sync"
	"testing"
)

// TestConcurrentFirstUse decodes and encodes in every national language
// from many goroutines at once, in a fresh process (this test binary run
// again for this test alone), so no earlier test has built the tables:
// under -race, warthog618/sms's unguarded lazy tables are reported unless
// this package built them first (charsets.go).
func TestConcurrentFirstUse(t *testing.T) {
	if os.Getenv("OUTPOST_FIRST_USE") == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestConcurrentFirstUse$", "-test.count=1")
		cmd.Env = append(os.Environ(), "OUTPOST_FIRST_USE=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("first use from many goroutines: %v\n%s", err, out)
		}
		return
	}
	var wg sync.WaitGroup
	for _, lang := range []string{"", "turkish", "spanish", "portuguese", "hindi", "urdu"} {
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				o := Outgoing{To: "+905551234567", Text: "Günaydın ğış çö ÇŞ ₤ {}"}
				if lang != "" {
					l, _ := Language(lang)
					o.Languages = []int{l}
				}
				parts, err := (&Encoder{}).Encode(o)
				if err != nil {
					t.Error(err)
					return
				}
				for _, p := range parts {
					if _, err := DecodeTPDU(p.TPDU); err != nil {
						t.Error(err)
					}
				}
			}()
		}
	}
	wg.Wait()
}
