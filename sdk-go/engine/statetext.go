package engine

import (
	"fmt"
	"strconv"
	"strings"
)

// MarshalText encodes s for stores that persist state as text (Postgres,
// DynamoDB): "v0 v1" then the series, space-separated, each number in the
// shortest form that parses back to the same double. An absent state is "".
func (s State) MarshalText() ([]byte, error) {
	if !s.Present {
		return nil, nil
	}
	b := make([]byte, 0, 48+24*len(s.Series))
	b = strconv.AppendFloat(b, s.V0, 'g', -1, 64)
	b = append(b, ' ')
	b = strconv.AppendFloat(b, s.V1, 'g', -1, 64)
	for _, v := range s.Series {
		b = append(b, ' ')
		b = strconv.AppendFloat(b, v, 'g', -1, 64)
	}
	return b, nil
}

// UnmarshalText decodes what MarshalText wrote; "" is an absent state.
func (s *State) UnmarshalText(text []byte) error {
	*s = State{}
	if len(text) == 0 {
		return nil
	}
	fields := strings.Fields(string(text))
	if len(fields) < 2 {
		return fmt.Errorf("engine: state text %q has %d numbers, want at least 2: %w", text, len(fields), ErrCorrupt)
	}
	nums := make([]float64, len(fields))
	for i, f := range fields {
		v, err := strconv.ParseFloat(f, 64)
		if err != nil {
			return fmt.Errorf("engine: state text %q: %w: %w", text, ErrCorrupt, err)
		}
		nums[i] = v
	}
	s.Present, s.V0, s.V1 = true, nums[0], nums[1]
	if len(nums) > 2 {
		s.Series = nums[2:]
	}
	return nil
}
