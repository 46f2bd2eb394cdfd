package engine_test

import (
	"math"
	"testing"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
)

func TestStateTextRoundTripsExactly(t *testing.T) {
	states := []engine.State{
		{},
		{Present: true, V0: 1700000000333.3333, V1: 0.1 + 0.2},
		{Present: true, V0: math.Nextafter(1.7e12, 2e12), V1: -0, Series: []float64{-1, 0, 17000000000, 3, 1e-300}},
	}
	for _, s := range states {
		text, err := s.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back engine.State
		if err := back.UnmarshalText(text); err != nil {
			t.Fatal(err)
		}
		if !sameState(s, back) {
			t.Fatalf("%+v -> %q -> %+v", s, text, back)
		}
	}
	var bad engine.State
	for _, text := range []string{"1", "x y", "1 2 z"} {
		if err := bad.UnmarshalText([]byte(text)); err == nil {
			t.Errorf("%q parsed", text)
		}
	}
}
