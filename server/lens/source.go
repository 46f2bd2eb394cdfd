package lens

import (
	"context"
	"encoding/json"
	"fmt"

	tea "github.com/charmbracelet/bubbletea"

	tkv1 "github.com/throttlekit/throttlekit-go/sdk-go/gen/throttlekit/v1"
	"github.com/throttlekit/throttlekit-go/sdk-go/throttlekit"
	"github.com/throttlekit/throttlekit-go/server/telemetry"
)

// Local reads the server's own hub and asks its own decision door for
// forecasts (--tui).
type Local struct {
	Hub  *telemetry.Hub
	Door tkv1.RateLimiterServer
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
