package scanner

import (
	"errors"
	"io"
	"syscall"
	"testing"
	"time"
)

func TestHangupDetector(t *testing.T) {
	type read struct {
		n    int
		err  error
		took time.Duration
	}
	idle := read{0, io.EOF, ReadTimeout}
	instant := read{0, io.EOF, time.Microsecond}
	data := read{5, nil, time.Millisecond}
	tests := []struct {
		name  string
		reads []read
		want  error // from the last read; every earlier one must return nil
	}{
		{name: "quiet line times out", reads: []read{idle, idle, idle, idle}},
		{name: "windows timeout has no eof", reads: []read{{0, nil, ReadTimeout}, {0, nil, ReadTimeout}}},
		{name: "data", reads: []read{data, data, data}},
		{name: "instant empty reads mean hangup", reads: []read{instant, instant, instant}, want: errHangup},
		{name: "data resets the count", reads: []read{instant, instant, data, instant, instant}},
		{name: "timeout resets the count", reads: []read{instant, instant, idle, instant, instant}},
		{name: "eio", reads: []read{{0, syscall.EIO, time.Microsecond}}, want: syscall.EIO},
		{name: "enxio after data", reads: []read{data, {0, syscall.ENXIO, time.Millisecond}}, want: syscall.ENXIO},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h hangupDetector
			var err error
			for i, r := range tt.reads {
				err = h.check(r.n, r.err, r.took)
				if i < len(tt.reads)-1 && err != nil {
					t.Fatalf("read %d: %v, want nil", i, err)
				}
			}
			if (tt.want == nil) != (err == nil) || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Fatalf("last read: %v, want %v", err, tt.want)
			}
		})
	}
}
