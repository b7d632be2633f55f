// Command allocgc measures what allocation costs a Go program and what its
// collector spends, by class, with the runtime's own accounting
// (runtime/metrics). Two modes; each prints CSV, one row per measurement.
//
// -mode alloc: the mutator's CPU per allocated object across object sizes.
// For each size of -sizes and each kind of -kinds it allocates objects that die
// young (each stored in a 16-slot ring, so that the compiler keeps the
// allocation and at most 16 are reachable) until -bytes are allocated or
// -objects made, whichever is more, beside a small live heap (-live-mib of the
// node graph below). Kinds: "noscan" is a []byte (no pointers: the collector
// marks it without scanning it), "scan" a []unsafe.Pointer (all pointer words,
// nil), "chunk" the validation server's request object (a 32-byte header with
// a pointer and a []byte of size-32 bytes: two objects). The row gives the
// user-class CPU (/cpu/classes/user: the mutator, with the allocation's
// zeroing, span refills and the sweeping it pays for) and the collector's CPU
// by class over the loop, the cycles and the objects the runtime counted
// (/gc/heap/allocs:objects), and the process's CPU time (getrusage: the runtime
// estimates its classes from wall time, so time spent waiting for a CPU would
// count in them); run it with GOMAXPROCS=1 so that every worker runs
// on the one P and the classes split that P's time.
//
// -mode mark: the collector's work and CPU by class against the live heap,
// its shape, the allocation rate, GOGC and GOMAXPROCS. It builds -live-mib of
// a heap of -shape ("nodes": the graph of package nodegraph, the validation
// server's live heap; "chunks": the validation server's request objects of -chunk
// bytes, a pointer header and a byte payload, linked in a list), then
// allocates garbage chunks of -chunk bytes paced to -alloc-mbps for -seconds
// (with -busy, a burn loop takes that share of the wall time between the
// allocations, as a request handler's computing does: a busy mutator, whose
// allocations meet the mark assists because the P is seldom idle) and prints
// one row for that steady window: cycles, the GC CPU by class
// (/cpu/classes/gc/mark/assist, dedicated — which includes the fractional
// worker —, idle, pause), the user CPU, the scannable heap, stacks and
// globals of the last cycle (/gc/scan/*), live heap and goal, the bytes and
// objects allocated.
//
// Standard library only; no network; the run is bounded by -max-seconds.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"cnsim/harness/internal/nodegraph"
)

type chunk struct {
	next *chunk
	data []byte
}

// The runtime/metrics samples read around each measurement.
var names = []string{
	"/cpu/classes/user:cpu-seconds",
	"/cpu/classes/gc/mark/assist:cpu-seconds",
	"/cpu/classes/gc/mark/dedicated:cpu-seconds",
	"/cpu/classes/gc/mark/idle:cpu-seconds",
	"/cpu/classes/gc/pause:cpu-seconds",
	"/cpu/classes/gc/total:cpu-seconds",
	"/cpu/classes/scavenge/total:cpu-seconds",
	"/cpu/classes/idle:cpu-seconds",
	"/cpu/classes/total:cpu-seconds",
	"/gc/cycles/total:gc-cycles",
	"/gc/heap/allocs:bytes",
	"/gc/heap/allocs:objects",
	"/gc/heap/live:bytes",
	"/gc/heap/goal:bytes",
	"/gc/scan/heap:bytes",
	"/gc/scan/stack:bytes",
	"/gc/scan/globals:bytes",
}

// columns are the CSV names of names, in order.
var columns = []string{
	"user_cpu_s", "assist_cpu_s", "dedicated_cpu_s", "idle_mark_cpu_s", "pause_cpu_s", "gc_cpu_s",
	"scavenge_cpu_s", "idle_cpu_s", "total_cpu_s", "cycles", "alloc_bytes", "alloc_objects",
	"live_bytes", "goal_bytes", "scan_heap_bytes", "scan_stack_bytes", "scan_globals_bytes",
}

// cumulative reports whether a column is a counter (its window value is a difference) or a gauge.
func cumulative(i int) bool { return i < 12 }

func read() []float64 {
	samples := make([]metrics.Sample, len(names))
	for i, n := range names {
		samples[i].Name = n
	}
	metrics.Read(samples)
	values := make([]float64, len(samples))
	for i, s := range samples {
		switch s.Value.Kind() {
		case metrics.KindFloat64:
			values[i] = s.Value.Float64()
		case metrics.KindUint64:
			values[i] = float64(s.Value.Uint64())
		default:
			values[i] = -1 // the runtime does not know this metric
		}
	}
	return values
}

// processCPU is the process's user and system CPU time (getrusage), seconds: unlike the runtime's CPU
// classes, which it estimates from wall time, it does not count time the process waited for a CPU.
func processCPU() float64 {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		return -1
	}
	return float64(u.Utime.Nano()+u.Stime.Nano()) / 1e9
}

func window(before, after []float64) []string {
	out := make([]string, len(before))
	for i := range before {
		v := after[i]
		if cumulative(i) && before[i] >= 0 {
			v -= before[i]
		}
		out[i] = strconv.FormatFloat(v, 'g', 9, 64)
	}
	return out
}

func buildNodes(bytes int64) []*nodegraph.Node {
	nodes, _ := nodegraph.Build(bytes, time.Time{})
	return nodes
}

func buildChunks(bytes int64, size int) *chunk {
	var head *chunk
	for made := int64(0); made < bytes; made += int64(size) {
		head = &chunk{next: head, data: make([]byte, size-int(unsafe.Sizeof(chunk{})))}
	}
	return head
}

// Rings of the last 16 objects of each kind, typed so that storing one does not allocate an interface.
var (
	ringBytes  [16][]byte
	ringPtrs   [16][]unsafe.Pointer
	ringChunks [16]*chunk
)

func allocate(kind string, size, count int) {
	switch kind {
	case "noscan":
		for i := 0; i < count; i++ {
			ringBytes[i&15] = make([]byte, size)
		}
	case "scan":
		words := size / 8
		for i := 0; i < count; i++ {
			ringPtrs[i&15] = make([]unsafe.Pointer, words)
		}
	case "chunk":
		payload := size - int(unsafe.Sizeof(chunk{}))
		for i := 0; i < count; i++ {
			ringChunks[i&15] = &chunk{data: make([]byte, payload)}
		}
	default:
		fmt.Fprintln(os.Stderr, "cnsim: error unknown -kinds entry", kind)
		os.Exit(2)
	}
}

var burnSink uint64

// burn runs n iterations of a multiply-add recurrence the compiler cannot drop.
func burn(n int) {
	x := uint64(n) | 1
	for i := 0; i < n; i++ {
		x = x*6364136223846793005 + 1442695040888963407
	}
	burnSink += x
}

func ints(list string) []int {
	var out []int
	for _, f := range strings.Split(list, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || v <= 0 {
			fmt.Fprintln(os.Stderr, "cnsim: error bad size", f)
			os.Exit(2)
		}
		out = append(out, v)
	}
	return out
}

func main() {
	mode := flag.String("mode", "alloc", "alloc | mark")
	sizes := flag.String("sizes", "16,64,256,1024,4096,16384,32768,65536,262144,1048576", "alloc: object sizes, bytes")
	kinds := flag.String("kinds", "noscan,scan,chunk", "alloc: object kinds")
	totalBytes := flag.Int64("bytes", 1<<30, "alloc: bytes to allocate per size and kind (at least -objects objects)")
	minObjects := flag.Int("objects", 2000000, "alloc: objects to allocate at least per size and kind")
	reps := flag.Int("reps", 3, "alloc: repetitions of each size and kind (rows)")
	liveMiB := flag.Int64("live-mib", 4, "live heap, MiB")
	shape := flag.String("shape", "nodes", "mark: live heap shape, nodes | chunks")
	chunkBytes := flag.Int("chunk", 1024, "mark: bytes per chunk (live chunks and garbage), >= 64")
	allocMBps := flag.Float64("alloc-mbps", 200, "mark: garbage allocation rate, MB/s (10^6 bytes)")
	seconds := flag.Float64("seconds", 5, "mark: steady window, s")
	busy := flag.Float64("busy", 0, "mark: share of wall time the mutator computes, between its allocations, 0-0.95")
	maxSeconds := flag.Float64("max-seconds", 60, "bound on the whole run, s")
	flag.Parse()
	deadline := time.Now().Add(time.Duration(*maxSeconds * float64(time.Second)))
	if *chunkBytes < 64 {
		fmt.Fprintln(os.Stderr, "cnsim: error -chunk must be >= 64")
		os.Exit(2)
	}
	if *busy < 0 || *busy > 0.95 {
		fmt.Fprintln(os.Stderr, "cnsim: error -busy must be between 0 and 0.95")
		os.Exit(2)
	}
	procs := runtime.GOMAXPROCS(0)

	switch *mode {
	case "alloc":
		live := buildNodes(*liveMiB << 20)
		fmt.Printf("size_bytes,kind,rep,objects,gomaxprocs,wall_s,process_cpu_s,%s\n", strings.Join(columns, ","))
		for rep := 1; rep <= *reps; rep++ {
			for _, kind := range strings.Split(*kinds, ",") {
				for _, size := range ints(*sizes) {
					if kind == "chunk" && size < 64 {
						continue
					}
					count := int(*totalBytes / int64(size))
					if count < *minObjects {
						count = *minObjects
					}
					if time.Now().After(deadline) {
						fmt.Fprintln(os.Stderr, "cnsim: error -max-seconds reached")
						os.Exit(3)
					}
					allocate(kind, size, count/10) // warm the size class's spans
					runtime.GC()
					before, start, cpuStart := read(), time.Now(), processCPU()
					allocate(kind, size, count)
					wall := time.Since(start).Seconds()
					// Flush the CPU classes (the runtime updates them at GC time); the process's CPU is
					// read after this cycle too, so that both count it.
					runtime.GC()
					after, cpu := read(), processCPU()-cpuStart
					fmt.Printf("%d,%s,%d,%d,%d,%.6f,%.6f,%s\n", size, kind, rep, count, procs, wall, cpu,
						strings.Join(window(before, after), ","))
				}
			}
		}
		runtime.KeepAlive(live)
	case "mark":
		var liveNodes []*nodegraph.Node
		var liveChunks *chunk
		switch *shape {
		case "nodes":
			liveNodes = buildNodes(*liveMiB << 20)
		case "chunks":
			liveChunks = buildChunks(*liveMiB<<20, *chunkBytes)
		default:
			fmt.Fprintln(os.Stderr, "cnsim: error unknown -shape", *shape)
			os.Exit(2)
		}
		runtime.GC()
		const batch = 256
		batchBytes := float64(batch * *chunkBytes)
		interval := time.Duration(batchBytes / (*allocMBps * 1e6) * float64(time.Second))
		payload := *chunkBytes - int(unsafe.Sizeof(chunk{}))
		// One second of allocation first, for the pacer to settle; the window then runs from the end of a
		// cycle to the end of another, -seconds or more later, because the runtime updates the CPU
		// classes when a cycle ends.
		cycles := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
		cycleCount := func() uint64 { metrics.Read(cycles); return cycles[0].Value.Uint64() }
		var before, after []float64
		var windowStart, windowEnd time.Time
		var cpuStart, cpuEnd float64
		start := time.Now()
		settle := start.Add(time.Second)
		var stop time.Time
		last := cycleCount()
		next := start
		for after == nil {
			now := time.Now()
			if now.After(deadline) {
				fmt.Fprintln(os.Stderr, "cnsim: error -max-seconds reached before the window's last cycle ended")
				os.Exit(3)
			}
			if count := cycleCount(); count != last {
				last = count
				switch {
				case before == nil && !now.Before(settle):
					before, windowStart, cpuStart = read(), now, processCPU()
					stop = now.Add(time.Duration(*seconds * float64(time.Second)))
				case before != nil && !now.Before(stop):
					after, windowEnd, cpuEnd = read(), now, processCPU()
				}
			}
			var head *chunk
			batchStart := time.Now()
			for i := 0; i < batch; i++ {
				head = &chunk{next: head, data: make([]byte, payload)}
				if *busy > 0 {
					// Compute (a burn loop, memory-light, as the validation server's handler does) until
					// this allocation's share of the batch's busy time has passed: a busy mutator whose
					// allocations are spread over its computing, as a request handler's are.
					until := batchStart.Add(time.Duration(*busy * float64(interval) * float64(i+1) / batch))
					for time.Now().Before(until) {
						burn(2000)
					}
				}
			}
			ringChunks[0] = head
			next = next.Add(interval)
			if wait := time.Until(next); wait > 0 {
				time.Sleep(wait)
			}
		}
		wall := windowEnd.Sub(windowStart).Seconds()
		fmt.Printf("shape,live_target_bytes,chunk_bytes,alloc_rate_target_bytes_per_s,busy,gomaxprocs,gogc,wall_s,"+
			"process_cpu_s,%s\n", strings.Join(columns, ","))
		fmt.Printf("%s,%d,%d,%.0f,%g,%d,%s,%.6f,%.6f,%s\n", *shape, *liveMiB<<20, *chunkBytes, *allocMBps*1e6, *busy, procs,
			os.Getenv("GOGC"), wall, cpuEnd-cpuStart, strings.Join(window(before, after), ","))
		runtime.KeepAlive(liveNodes)
		runtime.KeepAlive(liveChunks)
	default:
		fmt.Fprintln(os.Stderr, "cnsim: error -mode must be alloc or mark")
		os.Exit(2)
	}
}
