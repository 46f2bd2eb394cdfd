// Package lens is ThrottleKit Lens, the terminal dashboard: ten tabs
// drawn from the telemetry snapshot the Monitor door also serves, in the
// server (--tui) or from afar (throttlekit-lens), for one server or a
// fleet of them merged into one view (Fleet). It only reads.
package lens

import (
	"context"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/throttlekit/throttlekit-go/server/plan"
	"github.com/throttlekit/throttlekit-go/server/telemetry"
)

// Source is where Lens reads from: the server's own hub, or a remote
// server's Monitor and decision doors.
type Source interface {
	Snapshot(ctx context.Context) (telemetry.Snapshot, error)
	// Forecast is the capacity of one key (the Capacity tab).
	Forecast(ctx context.Context, policy, key string) (Forecast, error)
}

// Forecast is when a key's capacity returns (epoch ms).
type Forecast struct {
	SpendableNow    int64
	NextReplenishAt int64
	FullAt          int64
}

// The tabs, in key order 1 to 9, then 0.
var tabs = []string{"Overview", "Latency", "Fairness", "Capacity", "Guarantee", "Cost", "Replay", "Config", "Servers", "Plan"}

// planTab is the Plan tab's index.
const planTab = 9

// Minimum size for the full layout; smaller terminals get a compact view.
const minWidth, minHeight = 60, 12

// Model is the dashboard's state (a bubbletea model).
type Model struct {
	src      Source
	title    string
	interval time.Duration
	now      func() time.Time
	onQuit   func()

	width, height int
	tab           int
	snap          telemetry.Snapshot
	have          bool
	err           error
	forecasts     []forecastRow
	// The Plan tab: the last plan of the candidate, and when it was made.
	planned   *plan.Plan
	planErr   error
	planning  bool
	plannedAt time.Time
	paused    bool
	filter    string
	editing   bool // typing a filter
	scroll    int
}

type forecastRow struct {
	policy, key string
	f           Forecast
	err         error
}

// Options configures a Model.
type Options struct {
	// Title names what is watched (an address, "local").
	Title string
	// Interval between refreshes (1s).
	Interval time.Duration
	// OnQuit runs when the user quits (q): the server shuts down
	// gracefully, a remote Lens just exits.
	OnQuit func()
	// Now is the clock for relative times (time.Now).
	Now func() time.Time
}

// New returns a dashboard over src.
func New(src Source, o Options) Model {
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return Model{src: src, title: o.Title, interval: o.Interval, now: o.Now, onQuit: o.OnQuit, width: 100, height: 30}
}

type snapshotMsg struct {
	snap      telemetry.Snapshot
	forecasts []forecastRow
	err       error
}

type tickMsg struct{}

type planMsg struct {
	plan *plan.Plan
	err  error
}

// makePlan asks the source for the candidate's plan (r on the Plan tab).
func (m Model) makePlan() tea.Cmd {
	src := m.src
	return func() tea.Msg {
		p, ok := src.(Planner)
		if !ok {
			return planMsg{err: errNoCandidate}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		pl, err := p.Plan(ctx)
		return planMsg{plan: pl, err: err}
	}
}

// Init implements tea.Model.
func (m Model) Init() tea.Cmd { return m.fetch() }

func (m Model) tick() tea.Cmd {
	return tea.Tick(m.interval, func(time.Time) tea.Msg { return tickMsg{} })
}

// fetch reads a snapshot and the forecasts of the hottest keys.
func (m Model) fetch() tea.Cmd {
	src := m.src
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s, err := src.Snapshot(ctx)
		if err != nil {
			return snapshotMsg{err: err}
		}
		return snapshotMsg{snap: s, forecasts: forecasts(ctx, src, s)}
	}
}

// forecasts asks for the capacity of the three hottest keys of each rate
// policy.
func forecasts(ctx context.Context, src Source, s telemetry.Snapshot) []forecastRow {
	var out []forecastRow
	for _, p := range s.Policies {
		if p.Strategy == "" || p.Fair != nil { // a fair share has no per-key forecast
			continue
		}
		for i, kc := range p.TopRequested {
			if i == 3 {
				break
			}
			f, err := src.Forecast(ctx, p.Name, kc.Key)
			out = append(out, forecastRow{policy: p.Name, key: kc.Key, f: f, err: err})
		}
	}
	return out
}

// Update implements tea.Model.
func (m Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
	case snapshotMsg:
		if msg.err != nil {
			m.err = msg.err
		} else if !m.paused {
			m.snap, m.forecasts, m.have, m.err = msg.snap, msg.forecasts, true, nil
		}
		return m, m.tick()
	case planMsg:
		m.planning, m.planned, m.planErr, m.plannedAt = false, msg.plan, msg.err, m.now()
		return m, nil
	case tickMsg:
		if m.paused {
			return m, m.tick()
		}
		return m, m.fetch()
	case tea.KeyMsg:
		// Keys typed faster than the terminal is read arrive as one
		// message: handle them one at a time.
		if msg.Type == tea.KeyRunes && len(msg.Runes) > 1 && !msg.Paste {
			var cmd tea.Cmd
			var next tea.Model = m
			for _, r := range msg.Runes {
				if next, cmd = next.(Model).key(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}}); cmd != nil {
					return next, cmd // q: nothing after it matters
				}
			}
			return next, nil
		}
		return m.key(msg)
	}
	return m, nil
}

func (m Model) key(k tea.KeyMsg) (tea.Model, tea.Cmd) {
	if m.editing {
		switch k.Type {
		case tea.KeyEnter:
			m.editing = false
		case tea.KeyEsc:
			m.editing, m.filter = false, ""
		case tea.KeyBackspace:
			if r := []rune(m.filter); len(r) > 0 {
				m.filter = string(r[:len(r)-1])
			}
		case tea.KeyRunes, tea.KeySpace:
			m.filter += string(k.Runes)
		}
		m.scroll = 0
		return m, nil
	}
	switch s := k.String(); s {
	case "q", "ctrl+c":
		if m.onQuit != nil {
			m.onQuit()
		}
		return m, tea.Quit
	case "1", "2", "3", "4", "5", "6", "7", "8", "9":
		m.tab, m.scroll = int(s[0]-'1'), 0
	case "0":
		m.tab, m.scroll = planTab, 0
	case "r":
		if m.tab == planTab && !m.planning {
			m.planning = true
			return m, m.makePlan()
		}
	case "tab", "right":
		m.tab, m.scroll = (m.tab+1)%len(tabs), 0
	case "shift+tab", "left":
		m.tab, m.scroll = (m.tab+len(tabs)-1)%len(tabs), 0
	case "up", "k":
		m.scroll = max(0, m.scroll-1)
	case "down", "j":
		m.scroll++
	case "pgup":
		m.scroll = max(0, m.scroll-m.pageSize())
	case "pgdown":
		m.scroll += m.pageSize()
	case "p":
		m.paused = !m.paused
	case "/":
		m.editing, m.filter = true, ""
	case "esc":
		m.filter, m.scroll = "", 0
	}
	return m, nil
}

func (m Model) pageSize() int { return max(1, m.height-3) }

// matches applies the filter (a case-insensitive substring).
func (m Model) matches(fields ...string) bool {
	if m.filter == "" {
		return true
	}
	f := strings.ToLower(m.filter)
	for _, s := range fields {
		if strings.Contains(strings.ToLower(s), f) {
			return true
		}
	}
	return false
}
