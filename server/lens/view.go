package lens

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/charmbracelet/lipgloss"

	"github.com/throttlekit/throttlekit-go/server/fair"
	"github.com/throttlekit/throttlekit-go/server/plan"
	"github.com/throttlekit/throttlekit-go/server/telemetry"
)

var (
	titleStyle  = lipgloss.NewStyle().Bold(true)
	activeTab   = lipgloss.NewStyle().Bold(true).Reverse(true)
	headStyle   = lipgloss.NewStyle().Bold(true).Underline(true)
	warnStyle   = lipgloss.NewStyle().Bold(true).Foreground(lipgloss.Color("3"))
	deniedStyle = lipgloss.NewStyle().Foreground(lipgloss.Color("1"))
	dimStyle    = lipgloss.NewStyle().Faint(true)
)

// View implements tea.Model.
func (m Model) View() string {
	if m.width < minWidth || m.height < minHeight {
		return m.compact()
	}
	var b strings.Builder
	b.WriteString(m.header() + "\n")
	b.WriteString(m.tabBar() + "\n")
	body := m.body()
	avail := m.height - 3 // header, tab bar, footer
	scroll := min(m.scroll, max(0, len(body)-avail))
	end := min(len(body), scroll+avail)
	for _, line := range body[scroll:end] {
		b.WriteString(clip(line, m.width) + "\n")
	}
	for i := end - scroll; i < avail; i++ {
		b.WriteString("\n")
	}
	b.WriteString(clip(m.footer(), m.width))
	return b.String()
}

func (m Model) header() string {
	h := "ThrottleKit Lens"
	if m.title != "" {
		h += " — " + m.title
	}
	var info []string
	switch {
	case m.have && m.snap.Mode == "fleet":
		up := 0
		for _, s := range m.snap.Servers {
			if s.Err == "" {
				up++
			}
		}
		info = append(info, fmt.Sprintf("fleet of %d, %d up", len(m.snap.Servers), up), "window "+(time.Duration(m.snap.WindowMs)*time.Millisecond).String())
	case m.have:
		info = append(info, "node "+m.snap.NodeID, "window "+(time.Duration(m.snap.WindowMs)*time.Millisecond).String())
	}
	if m.paused {
		info = append(info, warnStyle.Render("PAUSED"))
	}
	if m.err != nil {
		info = append(info, deniedStyle.Render("error: "+m.err.Error()))
	}
	return clip(titleStyle.Render(h)+"  "+strings.Join(info, " · "), m.width)
}

func (m Model) tabBar() string {
	labels := make([]string, len(tabs))
	width := 0
	for i, t := range tabs {
		labels[i] = fmt.Sprintf(" %d %s ", (i+1)%10, t)
		width += len(labels[i])
	}
	for i := range labels {
		if width > m.width { // narrow: one space between labels
			labels[i] = strings.TrimPrefix(labels[i], " ")
		}
		if i == m.tab {
			labels[i] = activeTab.Render(labels[i])
		}
	}
	return clip(strings.Join(labels, ""), m.width)
}

func (m Model) footer() string {
	f := "0-9/Tab tabs · ↑↓ PgUp PgDn scroll · / filter · p pause · q quit"
	if m.tab == planTab {
		f = "r plan · " + f
	}
	switch {
	case m.editing:
		f = "filter: " + m.filter + "█  (Enter apply · Esc clear)"
	case m.filter != "":
		f = fmt.Sprintf("filter %q (Esc clears) · ", m.filter) + f
	}
	return dimStyle.Render(f)
}

// compact is all a terminal below minWidth×minHeight gets.
func (m Model) compact() string {
	lines := []string{fmt.Sprintf("Lens needs %dx%d (now %dx%d)", minWidth, minHeight, m.width, m.height)}
	for _, p := range m.snap.Policies {
		lines = append(lines, fmt.Sprintf("%s %d/%d", p.Name, allowed(p), denied(p)))
	}
	lines = append(lines, "q quit")
	if len(lines) > m.height && m.height > 0 {
		lines = lines[:m.height]
	}
	for i := range lines {
		lines[i] = clip(lines[i], max(m.width, 1))
	}
	return strings.Join(lines, "\n")
}

func (m Model) body() []string {
	if !m.have {
		if m.err != nil {
			return []string{"", "  no snapshot yet: " + m.err.Error()}
		}
		return []string{"", "  waiting for the first snapshot…"}
	}
	switch m.tab {
	case 0:
		return m.overview()
	case 1:
		return m.latency()
	case 2:
		return m.fairness()
	case 3:
		return m.capacity()
	case 4:
		return m.guarantee()
	case 5:
		return m.cost()
	case 6:
		return m.replay()
	case 7:
		return m.config()
	case 8:
		return m.servers()
	}
	return m.planView()
}

func allowed(p telemetry.PolicySnapshot) int64 { return p.Allowed + p.FailOpen }
func denied(p telemetry.PolicySnapshot) int64  { return p.Denied + p.FailClosed + p.ShadowDenied }

func (m Model) overview() []string {
	var total, deny int64
	series := make([]int64, 0)
	axes := map[string]int64{}
	for _, p := range m.snap.Policies {
		total += allowed(p) + denied(p)
		deny += denied(p)
		for i, v := range p.PerSecond {
			if i >= len(series) {
				series = append(series, 0)
			}
			series[i] += v
		}
		for a, n := range p.DenialsByAxis {
			axes[a] += n
		}
	}
	win := max(1, m.snap.WindowMs/1000)
	out := []string{
		fmt.Sprintf("Throughput %d decisions in %ds (%.1f/s) · deny rate %s", total, win, float64(total)/float64(win), pct(deny, total)),
		"  " + sparkline(series, m.width-4),
		"",
		headStyle.Render(fmt.Sprintf("%-20s %-9s %10s %8s %7s  %s", "POLICY", "KIND", "DECISIONS", "DENIED", "DENY%", "TREND")),
	}
	for _, p := range m.snap.Policies {
		if !m.matches(p.Name, p.Kind) {
			continue
		}
		name := trunc(p.Name, 20)
		if p.Shadow {
			// Its denials were answered allowed.
			name = trunc(p.Name, 13) + " shadow"
		}
		out = append(out, fmt.Sprintf("%-20s %-9s %10d %8d %7s  %s", name, p.Kind, allowed(p)+denied(p), denied(p),
			pct(denied(p), allowed(p)+denied(p)), sparkline(p.PerSecond, 20)))
	}
	out = append(out, "", fmt.Sprintf("Binding axis  rate %d · concurrency %d · cost %d", axes["rate"], axes["concurrency"], axes["cost"]))
	var top []string
	type kc struct {
		policy, key string
		n           int64
	}
	var all []kc
	for _, p := range m.snap.Policies {
		for _, k := range p.TopDenied {
			if m.matches(p.Name, k.Key) {
				all = append(all, kc{p.Name, k.Key, k.Count})
			}
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].n > all[j].n })
	for i, k := range all {
		if i == 5 {
			break
		}
		top = append(top, fmt.Sprintf("%s (%s) %d", keyLabel(k.key), k.policy, k.n))
	}
	out = append(out, "Top denied    "+orNone(strings.Join(top, " · ")), "", headStyle.Render("Recent denials"))
	n := 0
	for _, d := range m.snap.RecentDenials {
		if n == 5 {
			break
		}
		if m.matches(d.Policy, d.Key, d.Axis) {
			out = append(out, "  "+m.denialLine(d))
			n++
		}
	}
	if n == 0 {
		out = append(out, "  none")
	}
	return out
}

// tailFloorMs is the p99 below which a long tail is no alarm: at
// microsecond scale a p99 ten times the p50 (0.09 ms against 0.007 ms) is
// one scheduler hiccup, not a problem anyone should chase.
const tailFloorMs = 1.0

// tailWarning reports a latency tail worth a look: enough decisions, a
// p99 at least ten times the p50, and at least tailFloorMs.
func tailWarning(l telemetry.LatencySummary) bool {
	return l.N >= 10 && l.P50Ms > 0 && l.P99Ms >= 10*l.P50Ms && l.P99Ms >= tailFloorMs
}

func (m Model) latency() []string {
	out := []string{headStyle.Render(fmt.Sprintf("%-20s %7s %9s %9s %9s %9s", "POLICY", "N", "AVG ms", "P50 ms", "P99 ms", "MAX ms"))}
	for _, p := range m.snap.Policies {
		if !m.matches(p.Name) {
			continue
		}
		l := p.Latency
		line := fmt.Sprintf("%-20s %7d %9.3f %9.3f %9.3f %9.3f", trunc(p.Name, 20), l.N, l.AvgMs, l.P50Ms, l.P99Ms, l.MaxMs)
		if tailWarning(l) {
			line += "  " + warnStyle.Render("⚠ p99 ≫ p50")
		}
		out = append(out, line)
	}
	return append(out, "", dimStyle.Render("Time inside the server, over the last 1024 decisions of each policy in the window."))
}

func (m Model) fairness() []string {
	var out []string
	for _, p := range m.snap.Policies {
		if !m.matches(p.Name, p.Strategy) {
			continue
		}
		if p.Fair != nil {
			out = append(out, m.fairShare(p.Name, p.Fair, "")...)
		}
		servers := make([]string, 0, len(p.FairByServer))
		for s := range p.FairByServer {
			servers = append(servers, s)
		}
		sort.Strings(servers)
		for _, s := range servers {
			out = append(out, m.fairShare(p.Name, p.FairByServer[s], s)...)
		}
	}
	if len(out) > 0 {
		out = append(out, dimStyle.Render("█ used within its guarantee · ▓ borrowed · ░ guaranteed, unused · on the budget's scale"), "")
	}
	for _, p := range m.snap.Policies {
		total := allowed(p) + denied(p)
		if total == 0 || p.Fair != nil || p.FairByServer != nil || !m.matches(p.Name) {
			continue
		}
		out = append(out, headStyle.Render(fmt.Sprintf("%s — %d decisions", p.Name, total)))
		for _, k := range p.TopRequested {
			if !m.matches(p.Name, k.Key) {
				continue
			}
			out = append(out, fmt.Sprintf("  %-24s %6d %7s %s", trunc(keyLabel(k.Key), 24), k.Count, pct(k.Count, total), bar(k.Count, total, 30)))
		}
		out = append(out, "")
	}
	if len(out) == 0 {
		return []string{"no traffic in the window"}
	}
	return out
}

// fairShare draws a fair policy's window: its budget (a region's grant
// of the pool), what is used and free, and its top tenants; server names
// the server it is of, in a fleet ("" for one server's own).
func (m Model) fairShare(name string, f *fair.Standing, server string) []string {
	if server != "" {
		name += " on " + server
	}
	win := fmtDur(f.WindowEnd - f.WindowStart)
	tenants := fmt.Sprintf("%d tenants", f.Tenants)
	if f.Tenants == 1 {
		tenants = "1 tenant"
	}
	out := []string{headStyle.Render(fmt.Sprintf("%s — %d per %s · used %d · free %d · %s", name, f.Limit, win, f.Used, f.Limit-f.Used, tenants))}
	if f.Region != "" {
		out = []string{headStyle.Render(fmt.Sprintf("%s — pool of %d per %s · pool free %d", name, f.Limit, win, f.Free)),
			fmt.Sprintf("  region %s: granted %d · used %d · %s", f.Region, f.Budget, f.Used, tenants)}
	}
	if f.Evicted > 0 {
		out = append(out, dimStyle.Render(fmt.Sprintf("  %d used by tenants no longer kept (maxKeys), still counted", f.Evicted)))
	}
	width := min(30, max(10, m.width-58)) // the bar takes what the columns leave
	out = append(out, fmt.Sprintf("  %-16s %6s %8s %10s %8s  %s", "TENANT", "WEIGHT", "USED", "GUARANTEED", "BORROWED", "resets in "+until(f.WindowEnd, m.now().UnixMilli())))
	for _, u := range f.Top {
		if !m.matches(name, u.Tenant) {
			continue
		}
		out = append(out, fmt.Sprintf("  %-16s %6g %8d %10d %8d  %s", trunc(u.Tenant, 16), u.Weight, u.Used, u.Guaranteed, u.Borrowed,
			shareBar(u.Used, u.Guaranteed, f.Budget, width)))
	}
	if len(f.Top) == 0 {
		out = append(out, "  no tenant in this window")
	}
	return append(out, "")
}

// shareBar draws used against guaranteed on scale: the part of the use
// within the guarantee, the part borrowed, the guarantee not yet used.
func shareBar(used, guaranteed, scale int64, width int) string {
	if scale <= 0 {
		return strings.Repeat("·", width)
	}
	cells := func(n int64) int { return int(min(int64(width), max(0, n)*int64(width)/scale)) }
	within := cells(min(used, guaranteed))
	borrowed := min(width-within, cells(used)-within)
	reserved := min(width-within-borrowed, max(0, cells(guaranteed)-within))
	return strings.Repeat("█", within) + strings.Repeat("▓", max(0, borrowed)) + strings.Repeat("░", max(0, reserved)) +
		strings.Repeat("·", max(0, width-within-max(0, borrowed)-max(0, reserved)))
}

func (m Model) capacity() []string {
	out := []string{headStyle.Render(fmt.Sprintf("%-20s %-24s %10s %12s %12s", "POLICY", "KEY", "SPENDABLE", "NEXT UNIT IN", "FULL IN"))}
	now := m.now().UnixMilli()
	for _, r := range m.forecasts {
		if !m.matches(r.policy, r.key) {
			continue
		}
		if r.err != nil {
			out = append(out, fmt.Sprintf("%-20s %-24s %s", trunc(r.policy, 20), trunc(r.key, 24), deniedStyle.Render(r.err.Error())))
			continue
		}
		out = append(out, fmt.Sprintf("%-20s %-24s %10d %12s %12s", trunc(r.policy, 20), trunc(r.key, 24), r.f.SpendableNow,
			until(r.f.NextReplenishAt, now), until(r.f.FullAt, now)))
	}
	if len(out) == 1 {
		out = append(out, "no rate-limited traffic in the window")
	}
	return append(out, "", dimStyle.Render("The three hottest keys of each rate policy, forecast at the last refresh."))
}

func (m Model) guarantee() []string {
	out := []string{headStyle.Render(fmt.Sprintf("%-20s %9s %-24s %7s %6s %s", "GUARD", "IN FLIGHT", "", "SHARE", "NODES", "STATE"))}
	for _, g := range m.snap.Guards {
		if !m.matches(g.Name, g.Server) {
			continue
		}
		if g.Server != "" {
			g.Name += "@" + g.Server
		}
		state := "ok"
		if g.Fenced {
			state = warnStyle.Render("FENCED")
		}
		share, nodes := "-", "-"
		if g.Nodes > 0 {
			share, nodes = fmt.Sprintf("%.0f%%", 100*g.Share), fmt.Sprint(g.Nodes)
		}
		out = append(out, fmt.Sprintf("%-20s %4d/%-4d %-24s %7s %6s %s", trunc(g.Name, 20), g.Inflight, g.Limit, bar(g.Inflight, g.Limit, 24), share, nodes, state))
	}
	if len(out) == 1 {
		out = append(out, "no concurrency policies")
	}
	return out
}

func (m Model) cost() []string {
	out := []string{headStyle.Render(fmt.Sprintf("%-20s %-24s %10s %10s %14s", "POLICY", "KEY", "TOKENS", "REMAINING", "EXHAUSTED IN"))}
	for _, p := range m.snap.Policies {
		for _, b := range p.Burn {
			if !m.matches(p.Name, b.Key, b.Server) {
				continue
			}
			if b.Server != "" {
				b.Key += "@" + b.Server
			}
			in := "-"
			if b.ExhaustsInMs > 0 {
				in = fmtDur(b.ExhaustsInMs)
			}
			out = append(out, fmt.Sprintf("%-20s %-24s %10d %10d %14s", trunc(p.Name, 20), trunc(b.Key, 24), b.Tokens, b.Remaining, in))
		}
	}
	if len(out) == 1 {
		out = append(out, "no token budgets spent in the window")
	}
	return append(out, "", dimStyle.Render("Tokens metered in the window; exhaustion at the window's burn rate."))
}

func (m Model) replay() []string {
	head := fmt.Sprintf("%-10s %-20s %-24s %-12s %6s %12s", "WHEN", "POLICY", "KEY", "AXIS", "LIMIT", "RETRY AFTER")
	if m.snap.Mode == "fleet" {
		head = fmt.Sprintf("%-10s %-16s %-16s %-12s %6s %12s  %s", "WHEN", "POLICY", "KEY", "AXIS", "LIMIT", "RETRY AFTER", "SERVER")
	}
	out := []string{headStyle.Render(head)}
	for _, d := range m.snap.RecentDenials {
		if m.matches(d.Policy, d.Key, d.Axis, d.Server) {
			out = append(out, m.denialLine(d))
		}
	}
	if len(out) == 1 {
		out = append(out, "no denials")
	}
	return out
}

func (m Model) denialLine(d telemetry.DenialEvent) string {
	if d.Shadow { // answered allowed
		d.Axis = "shadow:" + orNone(d.Axis)
	}
	if d.Server != "" { // a fleet's: narrower columns leave room for the server
		return fmt.Sprintf("%-10s %-16s %-16s %-12s %6d %12s  %s", ago(m.now().UnixMilli()-d.At), trunc(d.Policy, 16), trunc(d.Key, 16),
			orNone(d.Axis), d.Limit, fmtDur(d.RetryAfterMs), d.Server)
	}
	return fmt.Sprintf("%-10s %-20s %-24s %-12s %6d %12s", ago(m.now().UnixMilli()-d.At), trunc(d.Policy, 20), trunc(d.Key, 24),
		orNone(d.Axis), d.Limit, fmtDur(d.RetryAfterMs))
}

// servers is each server's health, store and decisions: the fleet's, or
// the one server's.
func (m Model) servers() []string {
	out := []string{headStyle.Render(fmt.Sprintf("%-22s %-18s %-11s %-9s %-8s %9s %6s  %s", "SERVER", "NODE", "HEALTH", "STORE", "CIRCUIT", "DECISIONS", "DENY%", "SNAPSHOT"))}
	rows := m.snap.Servers
	if len(rows) == 0 { // the server's own Lens
		rows = []telemetry.ServerStatus{{Addr: m.title, NodeID: m.snap.NodeID, Health: "SERVING", GeneratedAt: m.snap.GeneratedAt, Store: m.snap.Store}}
		for _, p := range m.snap.Policies {
			rows[0].Decisions += allowed(p) + denied(p)
			rows[0].Denied += denied(p)
		}
	}
	now := m.now().UnixMilli()
	for _, s := range rows {
		if !m.matches(s.Addr, s.NodeID) {
			continue
		}
		if s.Err != "" {
			out = append(out, fmt.Sprintf("%-22s %s", trunc(s.Addr, 22), deniedStyle.Render("unreachable: "+s.Err)))
			continue
		}
		kind, circuit := "-", "-"
		if s.Store != nil {
			kind, circuit = s.Store.Kind, orNone(s.Store.Circuit)
			if s.Store.Circuit == "open" {
				circuit = warnStyle.Render("OPEN")
			}
		}
		health := orNone(s.Health)
		if s.Health != "" && s.Health != "SERVING" {
			health = warnStyle.Render(s.Health)
		}
		out = append(out, fmt.Sprintf("%-22s %-18s %-11s %-9s %-8s %9d %6s  %s", trunc(s.Addr, 22), trunc(s.NodeID, 18), health, kind, circuit,
			s.Decisions, pct(s.Denied, s.Decisions), ago(now-s.GeneratedAt)))
		if s.Store != nil && s.Store.Circuit == "open" {
			out = append(out, dimStyle.Render(fmt.Sprintf("    open for %s: %s", fmtDur(now-s.Store.OpenSince), s.Store.Cause)))
		}
	}
	return append(out, "", dimStyle.Render("The circuit opens after repeated store failures: decisions then follow the fail mode while the store is probed."))
}

func (m Model) config() []string {
	out := []string{headStyle.Render(fmt.Sprintf("%-20s %-9s %-18s %10s", "POLICY", "KIND", "STRATEGY", "LIMIT"))}
	for _, p := range m.snap.Policies {
		if !m.matches(p.Name, p.Kind, p.Strategy, p.Detail) {
			continue
		}
		out = append(out, fmt.Sprintf("%-20s %-9s %-18s %10d", trunc(p.Name, 20), p.Kind, orNone(p.Strategy), p.Limit))
		if p.Detail != "" {
			out = append(out, dimStyle.Render("    "+p.Detail))
		}
		if p.Quota != nil {
			out = append(out, "    "+quotaLine(p.Quota))
		}
	}
	return out
}

// quotaLine is a quota's current period, on its own clock, and its use.
func quotaLine(q *telemetry.QuotaSnapshot) string {
	loc := time.UTC
	if l, err := time.LoadLocation(q.Zone); err == nil && q.Zone != "" {
		loc = l
	}
	at := func(ms int64) string { return time.UnixMilli(ms).In(loc).Format("2006-01-02 15:04") }
	zone := q.Zone
	if zone == "" {
		zone = "fixed period"
	}
	line := fmt.Sprintf("period %s → %s %s · %d allowed %d denied", at(q.Start), at(q.End), zone, q.Allowed, q.Denied)
	for i, u := range q.TopUsed {
		if i == 3 {
			break
		}
		line += fmt.Sprintf(" · %s %d/%d", trunc(u.Key, 16), u.Used, u.Limit)
	}
	return line
}

// sparkline draws the last width values, scaled to their maximum.
func sparkline(vals []int64, width int) string {
	if width <= 0 {
		return ""
	}
	if len(vals) > width {
		vals = vals[len(vals)-width:]
	}
	var hi int64
	for _, v := range vals {
		hi = max(hi, v)
	}
	levels := []rune("▁▂▃▄▅▆▇█")
	out := make([]rune, len(vals))
	for i, v := range vals {
		if hi == 0 || v == 0 {
			out[i] = ' '
			continue
		}
		out[i] = levels[min(int64(len(levels)-1), v*int64(len(levels)-1)/hi)]
	}
	return string(out)
}

func bar(v, total int64, width int) string {
	if total <= 0 {
		return strings.Repeat("░", width)
	}
	n := int(min(int64(width), v*int64(width)/total))
	return strings.Repeat("█", n) + strings.Repeat("░", width-n)
}

func pct(a, b int64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(a)/float64(b))
}

func fmtDur(ms int64) string {
	if ms <= 0 {
		return "-"
	}
	d := time.Duration(ms) * time.Millisecond
	if d >= time.Second {
		d = d.Round(time.Second)
	}
	return d.String()
}

func until(at, now int64) string {
	if at <= now {
		return "now"
	}
	return fmtDur(at - now)
}

func ago(ms int64) string {
	if ms < 1000 {
		return "just now"
	}
	return fmtDur(ms) + " ago"
}

// keyLabel names the empty key (a keyless admitter's) visibly.
func keyLabel(k string) string {
	if k == "" {
		return "(no key)"
	}
	return k
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func trunc(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// clip cuts a rendered line to width cells, styles intact; a line never
// becomes two.
func clip(s string, width int) string {
	if lipgloss.Width(s) > width {
		s = lipgloss.NewStyle().MaxWidth(width).Render(s)
	}
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

// planView is the Plan tab: the candidate's plan on the recent arrivals of
// every policy, made when r is pressed.
func (m Model) planView() []string {
	if _, ok := m.src.(Planner); !ok {
		return []string{errNoCandidate.Error()}
	}
	out := []string{"The candidate vs the policies in force, on the last arrivals of each policy, replayed cold. r: plan."}
	switch {
	case m.planning:
		return append(out, "", "planning…")
	case m.planErr != nil:
		return append(out, "", deniedStyle.Render("plan failed: "+m.planErr.Error()))
	case m.planned == nil:
		return append(out, "", "no plan yet: press r")
	}
	var b strings.Builder
	if err := plan.WriteText(&b, m.planned, nil); err != nil {
		return append(out, "", err.Error())
	}
	out = append(out, dimStyle.Render("planned "+ago(m.now().Sub(m.plannedAt).Milliseconds())), "")
	for _, line := range strings.Split(strings.TrimRight(b.String(), "\n"), "\n") {
		if m.matches(line) {
			out = append(out, line)
		}
	}
	return out
}
