package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestFigures(t *testing.T) {
	in := `goos: linux
BenchmarkA/naive-2   	 100	 1000 ns/op	 250.0 events/s
BenchmarkA/fast-2    	 100	 100 ns/op	 7500 events/s
BenchmarkB-2         	 1	 5 ns/op	 12.5 MiB
`
	figs := []figure{
		{name: "a.ratio", unit: "x", op: ">=", target: 20, bench: "BenchmarkA/fast", base: "BenchmarkA/naive", metric: "events/s"},
		{name: "b.heap", unit: "MiB", op: "<=", target: 10, bench: "BenchmarkB", metric: "MiB"},
		{name: "c.absent", unit: "x", op: ">=", target: 1, bench: "BenchmarkC", metric: "x"},
	}
	var out bytes.Buffer
	res := parse(strings.NewReader(in), &out)
	status := report(&out, res, figs, true)
	want := []string{
		"figure a.ratio 30.0 x (target >= 20)\n",
		"figure b.heap 12.5 MiB (target <= 10)  MISSED\n",
		"figure c.absent missing x (target >= 1)\n",
	}
	for _, w := range want {
		if !strings.Contains(out.String(), w) {
			t.Errorf("output lacks %q:\n%s", w, out.String())
		}
	}
	if !strings.HasPrefix(out.String(), in) || status != 1 {
		t.Errorf("status %d; input passed through: %v", status, strings.HasPrefix(out.String(), in))
	}
}

func TestStrictMissed(t *testing.T) {
	res := map[string]map[string]float64{"BenchmarkB": {"MiB": 12}}
	figs := []figure{{name: "b", unit: "MiB", op: "<=", target: 10, bench: "BenchmarkB", metric: "MiB"}}
	var out bytes.Buffer
	if s := report(&out, res, figs, true); s != 2 {
		t.Fatalf("strict status %d", s)
	}
	if s := report(&out, res, figs, false); s != 0 {
		t.Fatalf("lenient status %d", s)
	}
}
