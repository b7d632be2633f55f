// Command gcpause holds a live heap of a given size and allocates garbage at a
// steady rate, so that the Go runtime, run with GODEBUG=gctrace=1, prints one
// line per GC cycle on standard error (nothing else writes there, so no line is
// interleaved). Its one CSV row on standard output gives first_steady_cycle and
// last_steady_cycle: the GC cycles wholly inside the steady phase, after the
// live heap was built (runtime.MemStats.NumGC at the switch + 2, since a cycle
// may be under way then) and before the program stopped allocating.
//
// The live heap is a pointer graph of 64-byte nodes (two pointers, 48 bytes of
// payload), so marking it costs what marking a pointer-rich heap costs. Garbage
// is 256-byte objects with one pointer, allocated in batches paced to
// -alloc-mbps. The run is bounded by -seconds (steady phase) and -max-seconds
// (whole run, heap building included). Standard library only; no network.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"time"

	"cnsim/harness/internal/nodegraph"
)

type garbage struct {
	next    *garbage
	payload [248]byte
}

var sink *garbage

func main() {
	heapMiB := flag.Int64("heap-mib", 64, "live heap to hold, MiB")
	allocMBps := flag.Float64("alloc-mbps", 256, "garbage allocation rate, MB/s (10^6 bytes)")
	seconds := flag.Float64("seconds", 5, "duration of the steady phase, s")
	maxSeconds := flag.Float64("max-seconds", 30, "bound on the whole run, s")
	flag.Parse()

	start := time.Now()
	deadline := start.Add(time.Duration(*maxSeconds * float64(time.Second)))
	live, ok := nodegraph.Build(*heapMiB<<20, deadline)
	if !ok {
		fmt.Fprintln(os.Stderr, "cnsim: error heap build exceeded -max-seconds")
		os.Exit(3)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	firstSteady := ms.NumGC + 2

	const batch = 4096 // objects per paced batch
	batchBytes := float64(batch * 256)
	interval := time.Duration(batchBytes / (*allocMBps * 1e6) * float64(time.Second))
	steadyStart := time.Now()
	stop := steadyStart.Add(time.Duration(*seconds * float64(time.Second)))
	if stop.After(deadline) {
		stop = deadline
	}
	var allocated float64
	next := steadyStart
	for time.Now().Before(stop) {
		for i := 0; i < batch; i++ {
			g := &garbage{next: sink}
			if i%1024 == 0 {
				sink = g // keep one object reachable briefly so the batch is not optimised away
			}
		}
		allocated += batchBytes
		next = next.Add(interval)
		if wait := time.Until(next); wait > 0 {
			time.Sleep(wait)
		}
	}
	elapsed := time.Since(steadyStart).Seconds()
	runtime.ReadMemStats(&ms)
	fmt.Printf("heap_target_bytes,alloc_rate_bytes_per_s,steady_s,num_gc,first_steady_cycle,last_steady_cycle,gomaxprocs,heap_alloc_bytes\n")
	fmt.Printf("%d,%.0f,%.3f,%d,%d,%d,%d,%d\n", *heapMiB<<20, allocated/elapsed, elapsed, ms.NumGC, firstSteady, ms.NumGC,
		runtime.GOMAXPROCS(0), ms.HeapAlloc)
	runtime.KeepAlive(live)
}
