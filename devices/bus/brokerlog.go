package bus

import (
	"context"
	"log/slog"
)

// brokerLogKeys are the attributes of mochi's log lines that are let
// through. mochi logs whole packets ("pk", "packet", "will") at some
// levels, payload included: an allowlist keeps those, and any attribute a
// later version adds, out of our logs (invariant 10).
var brokerLogKeys = map[string]bool{
	"error": true, "listener": true, "remote": true, "hook": true, "id": true,
	"protocol": true, "address": true, "version": true, "len": true,
	"keepalive": true, "recommended": true, "old_remote": true, "new_remote": true,
}

// brokerLog is the slog.Handler given to the embedded broker. It passes
// records at minLevel and above to the bus's handler with only the
// allowlisted attributes, and a "client" attribute only when it is a
// configured device id, as "device": an unauthenticated client id is
// whatever the other end sent.
type brokerLog struct {
	next     slog.Handler
	minLevel slog.Level
	isDevice func(string) bool
}

// Enabled lets a record through to Handle when the next handler takes its
// level, even below minLevel: Handle decides, once it knows the message.
func (h *brokerLog) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h *brokerLog) Handle(ctx context.Context, r slog.Record) error {
	msg, level := r.Message, r.Level
	if msg == "" {
		// mochi's listeners log, as warnings without a message, how every
		// connection ended: a device going away, a refused password (which
		// the hook logs itself). Debug is where that belongs.
		msg, level = "broker connection ended", slog.LevelDebug
	}
	if level < h.minLevel || !h.next.Enabled(ctx, level) {
		return nil
	}
	out := slog.NewRecord(r.Time, level, msg, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		if a, ok := h.keep(a); ok {
			out.AddAttrs(a)
		}
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h *brokerLog) keep(a slog.Attr) (slog.Attr, bool) {
	if a.Key == "client" {
		id := a.Value.Resolve().String()
		return slog.String("device", id), h.isDevice(id)
	}
	return a, brokerLogKeys[a.Key]
}

func (h *brokerLog) WithAttrs(as []slog.Attr) slog.Handler {
	var kept []slog.Attr
	for _, a := range as {
		if a, ok := h.keep(a); ok {
			kept = append(kept, a)
		}
	}
	return &brokerLog{next: h.next.WithAttrs(kept), minLevel: h.minLevel, isDevice: h.isDevice}
}

// WithGroup drops the group: mochi uses none, and a group would hide
// attributes from keep.
func (h *brokerLog) WithGroup(string) slog.Handler { return h }
