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
// Payload: a request's body is read to the end; the response's body is "ok\n",
// or -response-bytes bytes.
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
// Handler trace (-trace FILE): every request's query string (valload
// -index-query puts the request's index there), handler start (Unix ns), wall
// and thread CPU time, the CPU it started and ended on and the first moment (s
// after its start) it was seen on another CPU (getcpu(2) after each slice of
// the burn; empty if never), and how many other handlers were running when it
// started; written as CSV when the server stops. What it shows is how Linux
// places the server's threads on the cores: a handler sharing a CPU with
// another one takes longer in wall time than in CPU time.
//
// Time slices (-slice-seconds S > 0, no server): two locked OS threads spin
// for S seconds, each noting every time it was off the CPU for more than 20 µs;
// printed as CSV (thread, ran_s, off_s: how long it had run before, and how
// long it was off). Run on one CPU (taskset) it shows the kernel's time slice
// between two CPU-bound threads.
//
// Sysmon on a shared CPU (-sysmon-samples N > 0, no server): N times, the
// goroutine sleeps -sysmon-idle (every P idle, so the runtime's monitor thread
// sysmon falls into its deep sleep), makes one system call through the
// runtime (entersyscall wakes a sleeping sysmon, which then polls every 20 µs),
// and spins for -sysmon-spin, noting every time it was off the CPU for more
// than 3 µs; printed as CSV (sample, at_s: when after the system call, off_s).
// Run with GOMAXPROCS 1 on one CPU (taskset) it shows what sysmon's rounds
// cost a goroutine running on the CPU sysmon shares.
//
// A chain of services (-next URL): after its burn, a request calls the next
// service (GET URL, with the request's query string) through a client keeping
// its connections alive, and waits for the answer before answering; an error
// or a status other than 200 there makes this answer 502. Chained servers
// model a call graph's sequential calls for the validation of architectures.
//
// GC statistics (GET /stats): a JSON object of the runtime/metrics samples
// named in rtstats.GC (GC cycles, the GC's CPU by class and the process's,
// the live heap and its goal, the bytes and objects allocated, the bytes
// scanned), each under its metric name, a name the runtime does not know
// left out; "wall_s" (seconds since the process started) and "gomaxprocs".
// The /cpu/classes/ values are the runtime's estimates, updated at each GC.
// Two snapshots give the GC's share over the window between them.
//
// Standard output: one JSON line when ready ({"addr": ..., "burn_iterations":
// ...}) and one when it stops ({"requests": ..., "num_gc": ...}). It stops on
// SIGTERM/SIGINT or after -max-seconds. Standard library only.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"cnsim/harness/internal/nodegraph"
	"cnsim/harness/internal/rtstats"
	"cnsim/harness/internal/serve"
)

const clockThreadCPUTime = 3 // CLOCK_THREAD_CPUTIME_ID, linux/time.h
const sysGetcpu = 309        // getcpu(2) on linux/amd64; the syscall package has no name for it

type chunk struct {
	next *chunk
	data []byte
}

var burnSink atomic.Uint64

// callNext makes the chain's call to url (with query) and reads the answer; 200 if it came back 200, else 502.
func callNext(client *http.Client, url, query string) int {
	if query != "" {
		url += "?" + query
	}
	resp, err := client.Get(url)
	if err != nil {
		return http.StatusBadGateway
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return http.StatusBadGateway
	}
	return http.StatusOK
}

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

func currentCPU() int {
	var cpu, numaNode uint32
	syscall.RawSyscall(sysGetcpu, uintptr(unsafe.Pointer(&cpu)), uintptr(unsafe.Pointer(&numaNode)), 0)
	return int(cpu)
}

// handlerTrace is one request's line of the -trace file.
type handlerTrace struct {
	query            string
	startUnixNs      int64
	wall, cpu, moved time.Duration
	cpuStart, cpuEnd int
	others           int64
}

func writeTrace(path string, traces []handlerTrace) error {
	file, err := os.Create(path)
	if err != nil {
		return err
	}
	defer file.Close()
	fmt.Fprintln(file, "query,start_unix_ns,wall_s,cpu_s,cpu_start,cpu_end,moved_s,others")
	for _, t := range traces {
		moved := ""
		if t.moved >= 0 {
			moved = fmt.Sprintf("%.9f", t.moved.Seconds())
		}
		fmt.Fprintf(file, "%s,%d,%.9f,%.9f,%d,%d,%s,%d\n", t.query, t.startUnixNs, t.wall.Seconds(), t.cpu.Seconds(),
			t.cpuStart, t.cpuEnd, moved, t.others)
	}
	return nil
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

// slices prints, for two locked threads spinning for `seconds`, each time one was off the CPU for over 20 µs.
func slices(seconds float64) {
	const offAfter = 20 * time.Microsecond
	type off struct{ ran, off time.Duration }
	found := make([][]off, 2)
	end := time.Now().Add(time.Duration(seconds * float64(time.Second)))
	var done sync.WaitGroup
	for k := range found {
		done.Add(1)
		go func(k int) {
			defer done.Done()
			runtime.LockOSThread()
			last := time.Now()
			since := last
			for last.Before(end) {
				now := time.Now()
				if gap := now.Sub(last); gap > offAfter {
					found[k] = append(found[k], off{last.Sub(since), gap})
					since = now
				}
				last = now
			}
		}(k)
	}
	done.Wait()
	fmt.Println("thread,ran_s,off_s")
	for k, offs := range found {
		for _, o := range offs {
			fmt.Printf("%d,%.9f,%.9f\n", k, o.ran.Seconds(), o.off.Seconds())
		}
	}
}

// sysmonRounds prints, for `samples` spins of `spin` each after an idle `idle`, every time the spinning
// thread was off the CPU for over 3 µs (when, after the spin started, and for how long). The idle ends with
// a kernel interval timer's SIGALRM, not a Go timer: with no timer pending sysmon's deep sleep lasts until
// a goroutine leaves a system call (the signal's) or enters one (the spinner's getpid), as in a server
// woken by its network.
func sysmonRounds(samples int, idle, spin time.Duration) {
	const offAfter = 3 * time.Microsecond
	alarms := make(chan os.Signal, 1)
	signal.Notify(alarms, syscall.SIGALRM)
	period := syscall.Timeval{Sec: int64(idle / time.Second), Usec: int64(idle % time.Second / time.Microsecond)}
	timer := [2]syscall.Timeval{period, period}                                   // itimerval: interval, first expiry
	syscall.Syscall(syscall.SYS_SETITIMER, 0, uintptr(unsafe.Pointer(&timer)), 0) // ITIMER_REAL
	type off struct{ at, off time.Duration }
	found := make([]off, 0, 4096)
	fmt.Println("sample,at_s,off_s")
	for k := 0; k < samples; k++ {
		found = found[:0]
		<-alarms
		syscall.Syscall(syscall.SYS_GETPID, 0, 0, 0) // through entersyscall, unlike syscall.Getpid
		start := time.Now()
		last := start
		for last.Sub(start) < spin {
			now := time.Now()
			if gap := now.Sub(last); gap > offAfter {
				found = append(found, off{last.Sub(start), gap})
			}
			last = now
		}
		for _, o := range found { // after the spin: printing is a system call
			fmt.Printf("%d,%.9f,%.9f\n", k, o.at.Seconds(), o.off.Seconds())
		}
	}
	signal.Stop(alarms)
}

func buildHeap(bytes int64) []*nodegraph.Node {
	nodes, _ := nodegraph.Build(bytes, time.Time{})
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
	sliceSeconds := flag.Float64("slice-seconds", 0, "measure time slices of two spinning threads for this long instead of serving")
	sysmonSamples := flag.Int("sysmon-samples", 0, "measure sysmon's rounds on a shared CPU this many times instead of serving")
	sysmonIdle := flag.Duration("sysmon-idle", 30*time.Millisecond, "idle time before each -sysmon-samples spin")
	sysmonSpin := flag.Duration("sysmon-spin", 5*time.Millisecond, "length of each -sysmon-samples spin")
	tracePath := flag.String("trace", "", "write every handler's timing and CPUs to this CSV file when stopping")
	next := flag.String("next", "", "after the burn, call this URL (the next service of a chain) and wait for it")
	responseBytes := flag.Int("response-bytes", 0, "send this many bytes of body in each response instead of \"ok\\n\"")
	flag.Parse()
	if *allocChunk < 64 || *alloc < 0 || *cpu <= 0 {
		fmt.Fprintln(os.Stderr, "cnsim: error -alloc-chunk must be >= 64, -alloc >= 0, -cpu > 0")
		os.Exit(2)
	}

	if *sliceSeconds > 0 {
		slices(*sliceSeconds)
		return
	}
	if *sysmonSamples > 0 {
		sysmonRounds(*sysmonSamples, *sysmonIdle, *sysmonSpin)
		return
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
	var served, running atomic.Int64
	var traceMu sync.Mutex
	var traces []handlerTrace
	tracing := *tracePath != ""

	body := []byte("ok\n")
	if *responseBytes > 0 {
		body = bytes.Repeat([]byte("x"), *responseBytes)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024}}
	mux := http.NewServeMux()
	mux.HandleFunc("/work", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		var t handlerTrace
		var started time.Time
		var cpuBefore time.Duration
		if tracing {
			t.others = running.Add(1) - 1
			started, cpuBefore, t.cpuStart, t.moved = time.Now(), threadCPU(), currentCPU(), -1
			t.query, t.startUnixNs = r.URL.RawQuery, started.UnixNano()
		}
		var head *chunk
		for i := 0; i < slices; i++ {
			if i < chunks {
				head = &chunk{next: head, data: make([]byte, payload)}
			}
			burn(perSlice)
			if tracing && t.moved < 0 && currentCPU() != t.cpuStart {
				t.moved = time.Since(started)
			}
		}
		burn(iterations - perSlice*slices)
		status := http.StatusOK
		if *next != "" {
			status = callNext(client, *next, r.URL.RawQuery)
		}
		if tracing {
			t.cpu, t.cpuEnd, t.wall = threadCPU()-cpuBefore, currentCPU(), time.Since(started)
			running.Add(-1)
			traceMu.Lock()
			traces = append(traces, t)
			traceMu.Unlock()
		}
		w.Header().Set("Content-Type", "text/plain")
		if status != http.StatusOK {
			w.WriteHeader(status)
		}
		w.Write(body)
		runtime.KeepAlive(head)
		served.Add(1)
	})
	mux.HandleFunc("/stats", rtstats.Handler(nil))
	listener := serve.Listen(*addr)
	ready, _ := json.Marshal(map[string]any{
		"addr": listener.Addr().String(), "gomaxprocs": runtime.GOMAXPROCS(0), "go_version": runtime.Version(),
		"cpu_s": cpu.Seconds(), "alloc_bytes": *alloc, "alloc_chunk_bytes": *allocChunk,
		"live_heap_bytes": *liveHeapMiB << 20, "burn_iterations": iterations, "burn_iterations_per_cpu_s": rate,
		"burn_checked_cpu_s": checked.Seconds(),
	})
	fmt.Println(string(ready))

	serve.Until(listener, mux, *maxSeconds, "valserver")
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	done, _ := json.Marshal(map[string]any{
		"requests": served.Load(), "num_gc": ms.NumGC, "gc_cpu_fraction": ms.GCCPUFraction,
		"heap_alloc_bytes": ms.HeapAlloc, "pause_total_s": float64(ms.PauseTotalNs) / 1e9,
	})
	fmt.Println(string(done))
	if tracing {
		traceMu.Lock()
		if err := writeTrace(*tracePath, traces); err != nil {
			fmt.Fprintln(os.Stderr, "cnsim: error writing -trace:", err)
			os.Exit(3)
		}
	}
	runtime.KeepAlive(live)
}
