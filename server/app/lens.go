package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"

	"golang.org/x/term"

	"github.com/throttlekit/throttlekit-go/server/lens"
)

// logSink is the log's destination; while Lens owns the terminal the log
// goes to a file instead, so its lines never tear the dashboard.
type logSink struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func (s *logSink) swap(w io.Writer) io.Writer {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.w
	s.w = w
	return old
}

// terminal reports whether w is a terminal Lens can draw on.
func terminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// hungUp handles a SIGHUP while Lens draws on stdout: when the terminal
// is gone (it answers no terminal request: the hangup a closed window or
// a dropped session sends), the server has no one to show Lens to and no
// log a person will read, so it shuts down gracefully, as q does, instead
// of living on as a headless orphan holding its port. A SIGHUP while the
// terminal is still there is the usual request to reload.
func hungUp(stdout io.Writer, log *slog.Logger, quit func()) bool {
	if terminal(stdout) {
		return false
	}
	log.Warn("the terminal hung up while Lens was drawing; shutting down gracefully as q does (serve headless without --tui)")
	quit()
	return true
}

// startLens runs the dashboard on stdout when it is a terminal, with the
// log moved to a file meanwhile; q quits the server gracefully (quit).
// Without a terminal it warns and the server goes on headless. The channel
// closes when Lens has given the terminal back.
func startLens(ctx context.Context, src lens.Source, title string, stdout io.Writer, sink *logSink, log *slog.Logger, quit func()) <-chan struct{} {
	done := make(chan struct{})
	if !terminal(stdout) {
		log.Warn("--tui needs a terminal on stdout; serving without Lens")
		close(done)
		return done
	}
	logFile, err := os.CreateTemp("", "throttlekit-server-*.log")
	if err != nil {
		log.Warn("--tui: no file for the log while Lens runs; serving without Lens", "err", err)
		close(done)
		return done
	}
	log.Info("Lens is drawing the terminal; the log continues in a file", "file", logFile.Name())
	old := sink.swap(logFile)
	go func() {
		defer close(done)
		defer func() {
			sink.swap(old)
			_ = logFile.Close()
		}()
		err := lens.Run(ctx, src, lens.Options{Title: fmt.Sprintf("%s · log %s", title, logFile.Name()), OnQuit: quit})
		if err != nil {
			log.Warn("Lens stopped", "err", err)
		}
	}()
	return done
}
