// Command schedlat measures scheduler wake-up latency: how late a goroutine
// runs after its timer expires. A goroutine calls time.Sleep(-sleep) in a loop;
// each sample is the time it actually resumed minus the time it asked to wake.
// Meanwhile -busy goroutines spin on arithmetic (preemptible only by the
// runtime's asynchronous preemption), competing for the GOMAXPROCS Ps set by the
// environment. With no busy goroutines this is the timer and wake-up path alone.
//
// CSV on standard output. Bounded by -seconds of sampling; no network.
package main

import (
	"flag"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"
)

var spinSink atomic.Uint64

func spin(stop *atomic.Bool) {
	x := uint64(1)
	for !stop.Load() {
		for i := 0; i < 1000; i++ {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
	spinSink.Add(x)
}

func main() {
	busy := flag.Int("busy", 0, "goroutines spinning on the CPU meanwhile")
	sleep := flag.Duration("sleep", time.Millisecond, "requested sleep per sample")
	seconds := flag.Float64("seconds", 1, "sampling duration, s")
	flag.Parse()
	procs := runtime.GOMAXPROCS(0)
	var stop atomic.Bool
	for i := 0; i < *busy; i++ {
		go spin(&stop)
	}
	end := time.Now().Add(time.Duration(*seconds * float64(time.Second)))
	lates := make([]time.Duration, 0, 4096)
	for time.Now().Before(end) {
		asked := time.Now().Add(*sleep)
		time.Sleep(*sleep)
		lates = append(lates, time.Since(asked))
	}
	stop.Store(true)
	fmt.Println("gomaxprocs,busy,sleep_s,sample,late_s")
	for i, d := range lates {
		fmt.Printf("%d,%d,%.6f,%d,%.9f\n", procs, *busy, sleep.Seconds(), i, d.Seconds())
	}
}
