package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

var unitMs = map[string]float64{"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}

// ParseDuration reads "<n><unit>" with unit ms, s, m, h or d ("30s",
// "1.5m") into whole milliseconds. The result must be positive.
func ParseDuration(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i <= 0 {
		return 0, fmt.Errorf("must be a duration such as 500ms, 30s, 1.5m, 1h or 1d")
	}
	n, err := strconv.ParseFloat(s[:i], 64)
	mult, ok := unitMs[s[i:]]
	if err != nil || !ok {
		return 0, fmt.Errorf("must be a duration such as 500ms, 30s, 1.5m, 1h or 1d")
	}
	return durationMs(n * mult)
}

func durationMs(ms float64) (int64, error) {
	if !(ms > 0) || math.IsInf(ms, 0) || ms > 1<<53 {
		return 0, fmt.Errorf("must be a positive duration")
	}
	if ms != math.Trunc(ms) {
		return 0, fmt.Errorf("must be a whole number of milliseconds")
	}
	return int64(ms), nil
}
