// Command goroutines measures what a goroutine costs.
//
// Spawn: for each n in -sizes, -reps times, start n goroutines that each only
// call WaitGroup.Done, and time from the first `go` statement to Wait returning;
// the row's ns_per_goroutine is that time divided by n (spawn, schedule, run and
// exit, amortised). One untimed warm-up round per size comes first.
//
// Memory (measured first, before the spawn rounds fill the runtime's free lists):
// -reps times, start -blocked goroutines that each block on a channel receive,
// wait until all have started, and read runtime.MemStats before and after
// (after a runtime.GC both times); the rows give the deltas of StackInuse,
// HeapInuse (which holds the g structures) and Sys, divided by the count. Only
// the first repetition of a process sees fresh memory: later ones reuse the g
// structures and spans of earlier ones (Sys does not grow), and their stacks
// start larger once a GC has scanned the blocked goroutines (the runtime's
// adaptive starting stack size), so a fresh process per sample is best.
//
// -mode chooses spawn, memory or both.
//
// CSV on standard output. Bounded by -max-seconds; no network.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

func spawnRound(n int) time.Duration {
	var wg sync.WaitGroup
	wg.Add(n)
	start := time.Now()
	for i := 0; i < n; i++ {
		go func() { wg.Done() }()
	}
	wg.Wait()
	return time.Since(start)
}

func memoryRound(n int) (stack, heap, sys int64) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	release := make(chan struct{})
	var started, done sync.WaitGroup
	started.Add(n)
	done.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			started.Done()
			<-release
			done.Done()
		}()
	}
	started.Wait()
	runtime.GC()
	runtime.ReadMemStats(&after)
	close(release)
	done.Wait()
	return int64(after.StackInuse) - int64(before.StackInuse),
		int64(after.HeapInuse) - int64(before.HeapInuse),
		int64(after.Sys) - int64(before.Sys)
}

func main() {
	sizes := flag.String("sizes", "10000,100000", "goroutine counts for the spawn measurement")
	reps := flag.Int("reps", 20, "repetitions per measurement")
	blocked := flag.Int("blocked", 10000, "blocked goroutines for the memory measurement")
	maxSeconds := flag.Float64("max-seconds", 20, "bound on the whole run, s")
	mode := flag.String("mode", "both", "spawn, memory or both")
	flag.Parse()
	if *mode != "spawn" && *mode != "memory" && *mode != "both" {
		fmt.Fprintf(os.Stderr, "cnsim: error bad -mode %q\n", *mode)
		os.Exit(2)
	}
	deadline := time.Now().Add(time.Duration(*maxSeconds * float64(time.Second)))

	fmt.Println("measurement,n,rep,ns_per_goroutine,stack_inuse_bytes_per_goroutine,heap_inuse_bytes_per_goroutine,sys_bytes_per_goroutine,gomaxprocs")
	procs := runtime.GOMAXPROCS(0)
	for rep := 0; *mode != "spawn" && rep < *reps && time.Now().Before(deadline); rep++ {
		stack, heap, sys := memoryRound(*blocked)
		n := float64(*blocked)
		fmt.Printf("memory,%d,%d,,%.1f,%.1f,%.1f,%d\n", *blocked, rep, float64(stack)/n, float64(heap)/n, float64(sys)/n, procs)
	}
	for _, field := range strings.Split(*sizes, ",") {
		if *mode == "memory" {
			break
		}
		n, err := strconv.Atoi(strings.TrimSpace(field))
		if err != nil || n <= 0 {
			fmt.Fprintf(os.Stderr, "cnsim: error bad size %q\n", field)
			os.Exit(2)
		}
		spawnRound(n) // warm-up: grows the free-g list and the stack cache
		for rep := 0; rep < *reps && time.Now().Before(deadline); rep++ {
			elapsed := spawnRound(n)
			fmt.Printf("spawn,%d,%d,%.3f,,,,%d\n", n, rep, float64(elapsed.Nanoseconds())/float64(n), procs)
		}
	}
}
