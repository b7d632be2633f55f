// Package rtstats reports a Go program's runtime/metrics samples as JSON-ready
// values, for the harnesses that answer GET /stats (valserver, goproxy).
package rtstats

import (
	"encoding/json"
	"net/http"
	"runtime"
	"runtime/metrics"
	"time"
)

var processStart = time.Now()

// GC are the samples the servers report: GC cycles, the GC's CPU by class and
// the process's, the live heap and its goal, what was allocated, what the last
// cycle scanned.
var GC = []string{
	"/gc/cycles/total:gc-cycles",
	"/cpu/classes/gc/mark/assist:cpu-seconds",
	"/cpu/classes/gc/mark/dedicated:cpu-seconds",
	"/cpu/classes/gc/mark/idle:cpu-seconds",
	"/cpu/classes/gc/pause:cpu-seconds",
	"/cpu/classes/gc/total:cpu-seconds",
	"/cpu/classes/total:cpu-seconds",
	"/cpu/classes/user:cpu-seconds",
	"/cpu/classes/idle:cpu-seconds",
	"/gc/heap/live:bytes",
	"/gc/heap/goal:bytes",
	"/gc/heap/allocs:bytes",
	"/gc/heap/allocs:objects",
	"/gc/scan/heap:bytes",
	"/gc/scan/stack:bytes",
	"/gc/scan/globals:bytes",
}

// Read reads names (a name this runtime does not know is left out), with the
// wall time since the process started and GOMAXPROCS.
func Read(names []string) map[string]any {
	known := map[string]bool{}
	for _, d := range metrics.All() {
		known[d.Name] = true
	}
	samples := make([]metrics.Sample, 0, len(names))
	for _, name := range names {
		if known[name] {
			samples = append(samples, metrics.Sample{Name: name})
		}
	}
	metrics.Read(samples)
	out := map[string]any{"wall_s": time.Since(processStart).Seconds(), "gomaxprocs": runtime.GOMAXPROCS(0)}
	for _, s := range samples {
		switch s.Value.Kind() {
		case metrics.KindUint64:
			out[s.Name] = s.Value.Uint64()
		case metrics.KindFloat64:
			out[s.Name] = s.Value.Float64()
		}
	}
	return out
}

// Handler answers GET /stats: Read(GC) as one JSON object, with what extra
// adds (nil: nothing).
func Handler(extra func(map[string]any)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		stats := Read(GC)
		if extra != nil {
			extra(stats)
		}
		body, _ := json.Marshal(stats)
		w.Header().Set("Content-Type", "application/json")
		w.Write(append(body, '\n'))
	}
}
