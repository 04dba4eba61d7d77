package clock

import (
	"testing"
	"time"
)

func TestFloor(t *testing.T) {
	if got := floor("2020-06-01"); !got.Equal(minFloor) {
		t.Errorf("a build date before 2025 gives floor %v", got)
	}
	if got := floor("garbage"); !got.Equal(minFloor) {
		t.Errorf("a bad build date gives floor %v", got)
	}
	if got, want := floor("2027-03-04"), time.Date(2027, 3, 4, 0, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("floor %v, want %v", got, want)
	}
	if Sane(time.Unix(0, 0)) || !Sane(Floor) || Sane(Floor.Add(-time.Millisecond)) {
		t.Error("Sane")
	}
}

func TestWatch(t *testing.T) {
	f := NewFake(time.Unix(100, 0))
	var w Watch
	obs := func() (Jump, bool) { return w.Observe(f.Now(), f.Elapsed()) }
	if _, ok := obs(); ok {
		t.Fatal("a jump at the first reading")
	}
	f.Advance(time.Hour)
	if j, ok := obs(); ok {
		t.Fatalf("elapsed time taken for a jump: %+v", j)
	}
	f.Advance(time.Minute)
	f.Set(f.Now().Add(-time.Second)) // NTP slewing: within the tolerance
	if j, ok := obs(); ok {
		t.Fatalf("a second of drift taken for a jump: %+v", j)
	}
	f.Advance(time.Minute)
	at := f.Now()
	f.Set(at.Add(-time.Hour))
	j, ok := obs()
	if !ok || !j.From.Equal(at) || j.By() != -time.Hour {
		t.Fatalf("jump back an hour: %+v %v", j, ok)
	}
}
