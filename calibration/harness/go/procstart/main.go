// Command procstart measures the start-up cost and idle memory of a Go process,
// the counterpart of the Node harness process.js.
//
// start: this binary re-executes itself with -child=exit (a process that
// returns from main at once) and times, with the monotonic clock, from just
// before exec.Cmd.Start until Wait returns, i.e. until the child has exited
// and been reaped: fork/exec, the Go runtime's start-up (heap arenas, the
// first Ms and Ps, sysmon), an empty main, and exit. One unrecorded run first
// warms the page cache.
// rss: the child is started with -child=rss: it sleeps rssSettle (so the
// runtime's start-up goroutines have settled) and prints VmRSS from
// /proc/self/status in bytes, with runtime.MemStats.Sys beside it.
//
// Output: CSV on standard output, columns measurement,rep,start_s,rss_bytes,
// sys_bytes. Bounded by -max-seconds. Standard library only; no network.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"
)

const rssSettle = 100 * time.Millisecond

func vmRSS() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		fmt.Fprintln(os.Stderr, "cnsim: error:", err)
		os.Exit(4)
	}
	defer f.Close()
	scan := bufio.NewScanner(f)
	for scan.Scan() {
		line := scan.Text()
		if strings.HasPrefix(line, "VmRSS:") {
			fields := strings.Fields(line)
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				break
			}
			return kb * 1024
		}
	}
	fmt.Fprintln(os.Stderr, "cnsim: error: no VmRSS in /proc/self/status")
	os.Exit(4)
	return 0
}

func runChild(self, mode string) ([]byte, time.Duration) {
	cmd := exec.Command(self, "-child", mode)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "cnsim: error:", err)
		os.Exit(4)
	}
	if err := cmd.Wait(); err != nil {
		fmt.Fprintln(os.Stderr, "cnsim: error: child:", err)
		os.Exit(4)
	}
	return out.Bytes(), time.Since(start)
}

func main() {
	reps := flag.Int("reps", 30, "timed starts")
	rssReps := flag.Int("rss-reps", 10, "processes whose idle RSS is read")
	maxSeconds := flag.Float64("max-seconds", 60, "bound on the whole run, s")
	child := flag.String("child", "", "internal: exit or rss")
	flag.Parse()
	switch *child {
	case "exit":
		return
	case "rss":
		time.Sleep(rssSettle)
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		fmt.Printf("%d,%d", vmRSS(), m.Sys)
		return
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "cnsim: error:", err)
		os.Exit(4)
	}
	deadline := time.Now().Add(time.Duration(*maxSeconds * float64(time.Second)))
	check := func() {
		if time.Now().After(deadline) {
			fmt.Fprintln(os.Stderr, "cnsim: error: procstart exceeded -max-seconds")
			os.Exit(3)
		}
	}
	fmt.Println("measurement,rep,start_s,rss_bytes,sys_bytes")
	runChild(self, "exit")
	for rep := 0; rep < *reps; rep++ {
		check()
		_, elapsed := runChild(self, "exit")
		fmt.Printf("start,%d,%.9f,,\n", rep, elapsed.Seconds())
	}
	for rep := 0; rep < *rssReps; rep++ {
		check()
		out, _ := runChild(self, "rss")
		fmt.Printf("rss,%d,,%s\n", rep, strings.TrimSpace(string(out)))
	}
}
