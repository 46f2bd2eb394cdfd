package httplimit

import "time"

// WithNow pins the clock the headers' seconds-until-reset are counted from.
func WithNow(now func() time.Time) Option { return optionFunc(func(c *config) { c.now = now }) }
