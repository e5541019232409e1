//go:build !windows

package scanner_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/storeagent/storeagent/agent"
	"github.com/storeagent/storeagent/agent/agenttest"
	"github.com/storeagent/storeagent/agent/consent"
	"github.com/storeagent/storeagent/agent/ident"
	"github.com/storeagent/storeagent/devices/scanner"
	"github.com/storeagent/storeagent/store"
)

// BenchmarkScanToAnswer measures a scan from the moment its bytes are
// written to a real pty until the agent's answer is ready: framing, the
// driver's queue, normalisation, the lookup. The floor, in the same run, is
// the agent core's own Identify of the same code.
func BenchmarkScanToAnswer(b *testing.B) {
	a, _ := agenttest.New(b, store.Options{})
	cards := make([]string, 200)
	for i := range cards {
		payload := fmt.Sprintf("700%012d", i)
		cards[i] = payload + string(ident.LuhnCheckDigit(payload))
		agenttest.Seed(b, a, agenttest.Customer{ID: fmt.Sprint("c", i), Card: cards[i], Email: fmt.Sprintf("c%d@example.com", i), Name: "N",
			Decisions: map[string]consent.Status{"loyalty": consent.Granted}})
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	c := scanner.NewConsumer(scanner.ConsumerConfig{Use: scanner.UseIdentify, Purpose: "loyalty", Device: "till-1"}, a, log)
	done := make(chan scanner.Result, 1)
	h := scanner.HandlerFunc(func(ctx context.Context, s scanner.Scan) {
		c.HandleScan(ctx, s)
		done <- c.Last()
	})
	p := startPTYPair(b)
	cfg := scanner.DefaultConfig()
	cfg.Name, cfg.Path, cfg.Debounce = "till-1", p.B, 0
	sc, err := scanner.New(cfg, h, log)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go sc.Run(ctx)
	w := p.openA()
	defer w.Close()
	for !sc.Stats().Connected {
		time.Sleep(5 * time.Millisecond)
	}
	n := max(b.N, 500)
	scan := make([]float64, n)
	core := make([]float64, n)
	b.ResetTimer()
	for i := range n {
		card := cards[i%len(cards)]
		start := time.Now()
		if _, err := w.WriteString(card + "\r"); err != nil {
			b.Fatal(err)
		}
		if r := <-done; r.Outcome != "known" {
			b.Fatalf("scan %d: %+v", i, r)
		}
		scan[i] = float64(time.Since(start).Nanoseconds()) / 1e3
		start = time.Now()
		if id, err := a.Identify(ctx, agent.IdentifyRequest{Scan: card, Purpose: "loyalty"}); err != nil || !id.Known {
			b.Fatal(err)
		}
		core[i] = float64(time.Since(start).Nanoseconds()) / 1e3
	}
	b.StopTimer()
	b.ReportMetric(pct(scan, 50), "p50-µs")
	b.ReportMetric(pct(scan, 99), "p99-µs")
	b.ReportMetric(pct(core, 50), "core-p50-µs")
	b.ReportMetric(pct(core, 99), "core-p99-µs")
}

func pct(v []float64, p int) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[(len(s)-1)*p/100]
}
