// Command chanlat measures channel hand-off latency: the time from just before
// a send to just after the matching receive returns in another goroutine that
// was blocked waiting for it. The sender waits for an acknowledgement before the
// next send, so every receive finds the receiver parked (the wake-up path).
// Timestamps are time.Now (monotonic clock); each sample is one hand-off, for
// an unbuffered channel and a buffered one (capacity -buffer).
//
// CSV on standard output. Bounded by -samples and -max-seconds; no network.
package main

import (
	"flag"
	"fmt"
	"runtime"
	"time"
)

func measure(kind string, capacity, samples int, deadline time.Time, procs int) {
	ch := make(chan time.Time, capacity)
	ack := make(chan struct{})
	latencies := make([]time.Duration, 0, samples)
	go func() {
		for sent := range ch {
			latencies = append(latencies, time.Since(sent))
			ack <- struct{}{}
		}
		close(ack)
	}()
	for i := 0; i < samples && time.Now().Before(deadline); i++ {
		ch <- time.Now()
		<-ack
	}
	close(ch)
	<-ack
	for i, d := range latencies {
		fmt.Printf("%s,%d,%d,%d,%.9f\n", kind, capacity, procs, i, d.Seconds())
	}
}

func main() {
	samples := flag.Int("samples", 20000, "hand-offs per channel kind")
	buffer := flag.Int("buffer", 64, "capacity of the buffered channel")
	maxSeconds := flag.Float64("max-seconds", 10, "bound on the whole run, s")
	flag.Parse()
	deadline := time.Now().Add(time.Duration(*maxSeconds * float64(time.Second)))
	procs := runtime.GOMAXPROCS(0)
	fmt.Println("channel,capacity,gomaxprocs,sample,latency_s")
	measure("unbuffered", 0, *samples, deadline, procs)
	measure("buffered", *buffer, *samples, deadline, procs)
}
