package grpclimit

import "time"

// WithNow pins the clock the metadata's seconds-until-reset count from.
func WithNow(now func() time.Time) Option { return optionFunc(func(c *config) { c.now = now }) }
