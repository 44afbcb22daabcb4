// Package logging builds the daemon's slog logger from the config.
package logging

import (
	"io"
	"log/slog"
	"strings"
)

// Logger is a slog.Logger whose level can change on reload; the format is
// fixed at start (changing it would split one log stream into two formats).
type Logger struct {
	*slog.Logger
	level *slog.LevelVar
}

// New returns a logger writing format ("text" or "json") to w at level.
func New(w io.Writer, format, level string) *Logger {
	lv := new(slog.LevelVar)
	lv.Set(ParseLevel(level))
	opts := &slog.HandlerOptions{Level: lv}
	var h slog.Handler
	if format == "json" {
		h = slog.NewJSONHandler(w, opts)
	} else {
		h = slog.NewTextHandler(w, opts)
	}
	return &Logger{Logger: slog.New(h), level: lv}
}

// SetLevel changes the level of every logger derived from this one.
func (l *Logger) SetLevel(level string) { l.level.Set(ParseLevel(level)) }

// ParseLevel maps a config level name to a slog.Level (info when unknown;
// the config validator has already refused unknown names).
func ParseLevel(s string) slog.Level {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}
