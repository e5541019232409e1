// Command benchfig reads `go test -bench` output on stdin, passes it through,
// and ends with one line per figure the project tracks:
//
//	figure <name> <value> <unit> (target <op> <value>)
//
// A figure is a metric of one benchmark, or the ratio of one benchmark's
// metric to a baseline's measured in the same run. The figures and their
// targets live in figures.go; add yours there and keep every earlier one.
// The exit status is 1 when a figure could not be computed, else 2 when
// one misses its target and -strict is given.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
)

type figure struct {
	name   string
	unit   string
	op     string // ">=" or "<="
	target float64
	bench  string // benchmark name without the -GOMAXPROCS suffix
	metric string // unit as the benchmark reports it
	base   string // if set, the value is bench/base on the same metric
}

func main() {
	strict := flag.Bool("strict", false, "exit 2 when a figure misses its target")
	flag.Parse()
	results := parse(os.Stdin, os.Stdout)
	os.Exit(report(os.Stdout, results, figures, *strict))
}

var procSuffix = regexp.MustCompile(`-\d+$`)

// parse copies r to w and collects every benchmark's metrics. When a
// benchmark appears more than once, the last result wins.
func parse(r io.Reader, w io.Writer) map[string]map[string]float64 {
	out := map[string]map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintln(w, line)
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := procSuffix.ReplaceAllString(f[0], "")
		m := map[string]float64{}
		for i := 2; i+1 < len(f); i += 2 {
			if v, err := strconv.ParseFloat(f[i], 64); err == nil {
				m[f[i+1]] = v
			}
		}
		out[name] = m
	}
	return out
}

func report(w io.Writer, res map[string]map[string]float64, figs []figure, strict bool) int {
	status := 0
	for _, f := range figs {
		v, ok := value(res, f)
		target := fmt.Sprintf("(target %s %s)", f.op, strconv.FormatFloat(f.target, 'g', -1, 64))
		if !ok {
			fmt.Fprintf(w, "figure %s missing %s %s\n", f.name, f.unit, target)
			status = 1
			continue
		}
		mark := ""
		if !meets(v, f) {
			mark = "  MISSED"
			if strict && status != 1 {
				status = 2
			}
		}
		fmt.Fprintf(w, "figure %s %s %s %s%s\n", f.name, format(v), f.unit, target, mark)
	}
	return status
}

func value(res map[string]map[string]float64, f figure) (float64, bool) {
	v, ok := res[f.bench][f.metric]
	if !ok || f.base == "" {
		return v, ok
	}
	b, ok := res[f.base][f.metric]
	if !ok || b == 0 {
		return 0, false
	}
	return v / b, true
}

func meets(v float64, f figure) bool {
	if f.op == "<=" {
		return v <= f.target
	}
	return v >= f.target
}

func format(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}
