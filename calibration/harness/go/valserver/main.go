// Command valserver is the Go net/http server of the validation experiments
// (calibration/validation): each request to /work burns a fixed CPU time and
// allocates a fixed number of bytes, beside a live heap of a given size.
//
// CPU burn: a loop of arithmetic whose iteration count is calibrated once at
// start-up against the thread CPU clock (clock_gettime CLOCK_THREAD_CPUTIME_ID
// on a locked OS thread), so that one request's loop costs -cpu of CPU. It is
// not a wall-clock spin: a request preempted by another keeps its work to do.
// The calibration takes the median of several trials, then checks the result
// on a further batch of loops and reports both.
//
// Allocation: -alloc bytes per request in -alloc-chunk byte objects holding a
// pointer (so the collector scans them), allocated evenly between slices of the
// burn and kept reachable until the response is written; garbage afterwards.
//
// Live heap: -live-heap-mib MiB of 64-byte nodes linked by pointers, built
// before listening (the same structure as the gcpause harness, whose cycles
// calibrate the simulator's mark rate).
//
// Work jitter (-jitter-samples N > 0, no server): after the calibration, N
// loops of the -cpu burn, each after an idle gap drawn log-uniformly between
// 10 µs and -jitter-max-gap (a quarter of them back to back), printed as CSV
// (idle_s, wall_s, cpu_s): how much longer than its CPU time fixed work takes
// on this machine, and whether a preceding idle gap changes it.
//
// Standard output: one JSON line when ready ({"addr": ..., "burn_iterations":
// ...}) and one when it stops ({"requests": ..., "num_gc": ...}). It stops on
// SIGTERM/SIGINT or after -max-seconds. Standard library only.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"sort"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

const clockThreadCPUTime = 3 // CLOCK_THREAD_CPUTIME_ID, linux/time.h

type node struct {
	left, right *node
	payload     [48]byte
}

type chunk struct {
	next *chunk
	data []byte
}

var burnSink atomic.Uint64

// burn runs n iterations of a multiply-add recurrence the compiler cannot drop.
func burn(n int) {
	x := uint64(n) | 1
	for i := 0; i < n; i++ {
		x = x*6364136223846793005 + 1442695040888963407
	}
	burnSink.Add(x)
}

func threadCPU() time.Duration {
	var ts syscall.Timespec
	_, _, errno := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTime, uintptr(unsafe.Pointer(&ts)), 0)
	if errno != 0 {
		fmt.Fprintln(os.Stderr, "cnsim: error clock_gettime(CLOCK_THREAD_CPUTIME_ID):", errno)
		os.Exit(3)
	}
	return time.Duration(ts.Nano())
}

// calibrate returns iterations per CPU-second: the median over trials of a loop of ~20 ms.
func calibrate(trials int) float64 {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	const n = 2_000_000
	burn(n) // warm-up
	rates := make([]float64, 0, trials)
	for t := 0; t < trials; t++ {
		before := threadCPU()
		burn(n)
		rates = append(rates, n/(threadCPU()-before).Seconds())
	}
	sort.Float64s(rates)
	return rates[len(rates)/2]
}

// check returns the mean thread CPU of `reps` loops of `iterations`.
func check(iterations, reps int) time.Duration {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	before := threadCPU()
	for i := 0; i < reps; i++ {
		burn(iterations)
	}
	return (threadCPU() - before) / time.Duration(reps)
}

// jitter prints, for `samples` burns of `iterations` after random idle gaps, the idle time before each
// and its wall and thread CPU time; it stops early at `deadline`.
func jitter(iterations, samples int, maxGap time.Duration, deadline time.Time) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	rng := rand.New(rand.NewSource(1))
	logMin, logMax := math.Log(10e-6), math.Log(maxGap.Seconds())
	fmt.Println("idle_s,wall_s,cpu_s")
	last := time.Now()
	for i := 0; i < samples && time.Now().Before(deadline); i++ {
		if rng.Intn(4) != 0 {
			time.Sleep(time.Duration(math.Exp(logMin+rng.Float64()*(logMax-logMin)) * float64(time.Second)))
		}
		start := time.Now()
		cpuBefore := threadCPU()
		burn(iterations)
		cpu := threadCPU() - cpuBefore
		end := time.Now()
		fmt.Printf("%.9f,%.9f,%.9f\n", start.Sub(last).Seconds(), end.Sub(start).Seconds(), cpu.Seconds())
		last = end
	}
}

func buildHeap(bytes int64) []*node {
	count := bytes / 64
	nodes := make([]*node, 0, count)
	for i := int64(0); i < count; i++ {
		n := &node{}
		if i > 0 {
			n.left = nodes[i-1]
			n.right = nodes[(i*7919)%i]
		}
		nodes = append(nodes, n)
	}
	return nodes
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address (port 0: any free port)")
	cpu := flag.Duration("cpu", time.Millisecond, "CPU time burnt per request")
	alloc := flag.Int("alloc", 65536, "bytes allocated per request")
	allocChunk := flag.Int("alloc-chunk", 1024, "bytes per allocated object")
	liveHeapMiB := flag.Int64("live-heap-mib", 16, "long-lived heap, MiB")
	maxSeconds := flag.Float64("max-seconds", 120, "stop after this long")
	jitterSamples := flag.Int("jitter-samples", 0, "measure work jitter with this many loops instead of serving")
	jitterMaxGap := flag.Duration("jitter-max-gap", 50*time.Millisecond, "longest idle gap before a jitter loop")
	flag.Parse()
	if *allocChunk < 64 || *alloc < 0 || *cpu <= 0 {
		fmt.Fprintln(os.Stderr, "cnsim: error -alloc-chunk must be >= 64, -alloc >= 0, -cpu > 0")
		os.Exit(2)
	}

	live := buildHeap(*liveHeapMiB << 20)
	runtime.GC()
	rate := calibrate(9)
	iterations := int(rate * cpu.Seconds())
	checked := check(iterations, 50)
	if *jitterSamples > 0 {
		jitter(iterations, *jitterSamples, *jitterMaxGap, time.Now().Add(time.Duration(*maxSeconds*float64(time.Second))))
		return
	}

	chunks := *alloc / *allocChunk
	payload := *allocChunk - int(unsafe.Sizeof(chunk{}))
	slices := chunks
	if slices < 1 {
		slices = 1
	}
	perSlice := iterations / slices
	var served atomic.Int64

	mux := http.NewServeMux()
	mux.HandleFunc("/work", func(w http.ResponseWriter, r *http.Request) {
		var head *chunk
		for i := 0; i < slices; i++ {
			if i < chunks {
				head = &chunk{next: head, data: make([]byte, payload)}
			}
			burn(perSlice)
		}
		burn(iterations - perSlice*slices)
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte("ok\n"))
		runtime.KeepAlive(head)
		served.Add(1)
	})
	listener, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cnsim: error listen:", err)
		os.Exit(3)
	}
	ready, _ := json.Marshal(map[string]any{
		"addr": listener.Addr().String(), "gomaxprocs": runtime.GOMAXPROCS(0), "go_version": runtime.Version(),
		"cpu_s": cpu.Seconds(), "alloc_bytes": *alloc, "alloc_chunk_bytes": *allocChunk,
		"live_heap_bytes": *liveHeapMiB << 20, "burn_iterations": iterations, "burn_iterations_per_cpu_s": rate,
		"burn_checked_cpu_s": checked.Seconds(),
	})
	fmt.Println(string(ready))

	server := &http.Server{Handler: mux}
	go server.Serve(listener)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-stop:
	case <-time.After(time.Duration(*maxSeconds * float64(time.Second))):
		fmt.Fprintln(os.Stderr, "cnsim: valserver stopped at -max-seconds")
	}
	listener.Close()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	done, _ := json.Marshal(map[string]any{
		"requests": served.Load(), "num_gc": ms.NumGC, "gc_cpu_fraction": ms.GCCPUFraction,
		"heap_alloc_bytes": ms.HeapAlloc, "pause_total_s": float64(ms.PauseTotalNs) / 1e9,
	})
	fmt.Println(string(done))
	runtime.KeepAlive(live)
}
