package lens

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	tea "github.com/charmbracelet/bubbletea"

	tkv1 "github.com/throttlekit/throttlekit-go/sdk-go/gen/throttlekit/v1"
	"github.com/throttlekit/throttlekit-go/sdk-go/throttlekit"
	"github.com/throttlekit/throttlekit-go/server/plan"
	"github.com/throttlekit/throttlekit-go/server/telemetry"
)

// Local reads the server's own hub and asks its own decision door for
// forecasts (--tui).
type Local struct {
	Hub  *telemetry.Hub
	Door tkv1.RateLimiterServer
	// Planner plans --plan-candidate on the recent arrivals (nil without
	// one).
	Planner func(context.Context) (*plan.Plan, error)
}

// Planner is a Source that can plan a candidate policy file on the recent
// arrivals of every policy (the Plan tab).
type Planner interface {
	Plan(ctx context.Context) (*plan.Plan, error)
}

// errNoCandidate is the Plan tab's answer without a candidate.
var errNoCandidate = errors.New("no candidate: start the server with --tui --plan-candidate FILE to plan a change on the recent arrivals")

// Plan implements Planner.
func (l Local) Plan(ctx context.Context) (*plan.Plan, error) {
	if l.Planner == nil {
		return nil, errNoCandidate
	}
	return l.Planner(ctx)
}

// Snapshot implements Source.
func (l Local) Snapshot(context.Context) (telemetry.Snapshot, error) { return l.Hub.Snapshot(), nil }

// Forecast implements Source.
func (l Local) Forecast(ctx context.Context, policy, key string) (Forecast, error) {
	r, err := l.Door.Forecast(ctx, &tkv1.ForecastRequest{Policy: policy, Key: key, Cost: 1})
	if err != nil {
		return Forecast{}, err
	}
	f := r.GetForecast()
	return Forecast{SpendableNow: f.GetSpendableNow(), NextReplenishAt: f.GetNextReplenishAt(), FullAt: f.GetFullAt()}, nil
}

// Remote reads another server through its Monitor door (the snapshot's
// raw JSON carries everything Lens draws) and its decision door.
type Remote struct {
	Monitor *throttlekit.Monitor
	Client  *throttlekit.Client
}

// Snapshot implements Source.
func (r Remote) Snapshot(ctx context.Context) (telemetry.Snapshot, error) {
	s, err := r.Monitor.Snapshot(ctx)
	if err != nil {
		return telemetry.Snapshot{}, err
	}
	var out telemetry.Snapshot
	if err := json.Unmarshal([]byte(s.RawJSON), &out); err != nil {
		return telemetry.Snapshot{}, fmt.Errorf("the server's snapshot JSON: %w", err)
	}
	return out, nil
}

// Forecast implements Source.
func (r Remote) Forecast(ctx context.Context, policy, key string) (Forecast, error) {
	f, err := r.Client.Forecast(ctx, policy, key, 1)
	if err != nil {
		return Forecast{}, err
	}
	return Forecast{SpendableNow: f.SpendableNow, NextReplenishAt: f.NextReplenishAt, FullAt: f.FullAt}, nil
}

// Run draws the dashboard on the terminal until the user quits or ctx
// ends.
func Run(ctx context.Context, src Source, o Options) error {
	p := tea.NewProgram(New(src, o), tea.WithAltScreen(), tea.WithContext(ctx))
	_, err := p.Run()
	if ctx.Err() != nil {
		return nil // the server is shutting down: not an error of Lens
	}
	return err
}
