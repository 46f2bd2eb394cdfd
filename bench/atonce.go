package main

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// atOnce compares two builds of throttlekit-server (binaries a and b, each
// with extra arguments args, e.g. --redis URL) by the CPU a call costs
// each, both driven at the same time — half the callers each, on 10,000
// distinct keys or one hot key — in rounds of d. Taken one after the other,
// as the ceiling comparison must (a server's calls/s alone is its figure),
// two rounds on this VM differ by tens of percent; taken at once, both see
// the same machine and a round's ratio moves by a percent or two, so a
// change of a few percent shows. It is the measurement of a change to the
// decision path, not a figure for the table.
func atOnce(a, b string, args []string, callers, rounds int, hot bool, d time.Duration) {
	dir, _ := os.MkdirTemp("", "tk-bench-atonce-")
	defer os.RemoveAll(dir)
	policy := dir + "/p.yaml"
	_ = os.WriteFile(policy, []byte(checkPolicy), 0o600)
	command := func(bin, side string) *exec.Cmd {
		argv := append([]string{"--config", policy, "--host", "127.0.0.1", "--port", "0"}, args...)
		if slices.Contains(args, "--redis") { // each its own keys on the one Redis
			argv = append(argv, "--redis-prefix", "atonce-"+side+":")
		}
		return exec.Command(bin, argv...)
	}
	ratios := driveAtOnce(command(a, "a"), command(b, "b"), callers, rounds, hot, d, func(r int, rate [2]float64, cpu [2]time.Duration) {
		fmt.Printf("round %d: a %.0f calls/s, %s a call; b %.0f calls/s, %s a call; b/a %.3f\n",
			r+1, rate[0], cpu[0].Round(10*time.Nanosecond), rate[1], cpu[1].Round(10*time.Nanosecond), float64(cpu[1])/float64(cpu[0]))
	})
	var s []string
	for _, x := range ratios {
		s = append(s, fmt.Sprintf("%.3f", x))
	}
	fmt.Printf("CPU per call, b/a: median %.3f of %d rounds (%s); %s, %d callers, %s\n",
		ratios[len(ratios)/2], len(ratios), strings.Join(s, " "), keysOf(hot), callers, strings.Join(args, " "))
}

// driveAtOnce starts two servers (commands a and b, each printing
// "listening on ADDR"), drives both at the same time with half the
// callers each for rounds of d, reports each round, and returns the
// rounds' ratios of CPU per call, b/a, ascending.
func driveAtOnce(a, b *exec.Cmd, callers, rounds int, hot bool, d time.Duration, report func(round int, rate [2]float64, cpu [2]time.Duration)) []float64 {
	listening := regexp.MustCompile(`listening on (\S+)`)
	type server struct {
		addr string
		pid  int
	}
	var servers []server
	defer func() {
		for _, s := range servers {
			if p, err := os.FindProcess(s.pid); err == nil {
				_ = p.Kill()
			}
		}
	}()
	for _, cmd := range []*exec.Cmd{a, b} {
		addr := startAndRead(cmd, listening)
		go func() { _ = cmd.Wait() }()
		servers = append(servers, server{addr, cmd.Process.Pid})
	}
	var ratios []float64
	for r := range rounds {
		var wg sync.WaitGroup
		var cpu [2]time.Duration
		var rate [2]float64
		for i, s := range servers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var before time.Duration
				var calls int64
				rate[i], calls = checkRate(s.addr, callers/2, hot, d, func() { before = cpuTime(s.pid) })
				cpu[i] = (cpuTime(s.pid) - before) / time.Duration(max(calls, 1))
			}()
		}
		wg.Wait()
		ratios = append(ratios, float64(cpu[1])/float64(cpu[0]))
		report(r, rate, cpu)
	}
	slices.Sort(ratios)
	return ratios
}
