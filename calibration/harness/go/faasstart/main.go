// Command faasstart measures a function's cold start as a FaaS platform sees
// it: from exec of the function's process to its first HTTP response, and the
// first request against the ones after it.
//
// The function is the command after the flags (the Go binary faasfn, or node
// with one of the scripts of harness/faas/). Each start: the monotonic clock
// is read just before exec.Cmd.Start; the function prints
// "cnsim-ready PORT MODULES MODULE_LOAD_S" once it listens on 127.0.0.1
// (ready_s: exec until that line is read); the driver then sends -requests
// GET requests one after another, each on a new TCP connection
// (DisableKeepAlives), so that request i differs from the first only in how
// warm the function's process is; each is timed from before Client.Get until
// its body is read and closed. first_response_s is exec until the first
// response's body is read. The process then gets SIGTERM and is reaped.
// -warmup unrecorded starts come first (page cache, and the driver's own
// client code paths). Variables NODE_* are removed from the child's
// environment.
//
// Output: CSV on standard output, columns
// measurement,variant,rep,index,seconds,modules,module_load_s; measurement
// ready, first_response (one row per start, index 0) or request (one row per
// request, index 1..requests). Bounded by -max-seconds. Standard library only;
// loopback only.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

type start struct {
	ready, firstResponse time.Duration
	requests             []time.Duration
	modules, moduleLoad  string
}

func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "NODE_") {
			env = append(env, kv)
		}
	}
	return env
}

func get(client *http.Client, url string) time.Duration {
	begin := time.Now()
	resp, err := client.Get(url)
	if err != nil {
		log.Fatalf("request: %v", err)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		log.Fatalf("response: status %d, %v", resp.StatusCode, err)
	}
	return time.Since(begin)
}

func run(argv []string, requests int, client *http.Client) start {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = childEnv()
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		log.Fatalf("%v", err)
	}
	begin := time.Now()
	if err := cmd.Start(); err != nil {
		log.Fatalf("start %s: %v", argv[0], err)
	}
	reader := bufio.NewReader(stdout)
	line, err := reader.ReadString('\n')
	ready := time.Since(begin)
	var port int
	var s start
	if _, scanErr := fmt.Sscanf(line, "cnsim-ready %d %s %s", &port, &s.modules, &s.moduleLoad); err != nil ||
		scanErr != nil {
		cmd.Process.Kill()
		log.Fatalf("function printed %q (%v, %v), not cnsim-ready PORT MODULES SECONDS", line, err, scanErr)
	}
	s.ready = ready
	url := fmt.Sprintf("http://127.0.0.1:%d/?name=cnsim", port)
	for i := 0; i < requests; i++ {
		s.requests = append(s.requests, get(client, url))
		if i == 0 {
			s.firstResponse = time.Since(begin)
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	io.Copy(io.Discard, reader) // until the function exits and its standard output closes
	if err := cmd.Wait(); err != nil {
		status, ok := err.(*exec.ExitError)
		if !ok || status.Sys().(syscall.WaitStatus).Signal() != syscall.SIGTERM {
			log.Fatalf("function: %v", err)
		}
	}
	return s
}

func main() {
	variant := flag.String("variant", "", "the function's name in the output")
	reps := flag.Int("reps", 10, "timed starts")
	warmup := flag.Int("warmup", 1, "unrecorded starts before them")
	requests := flag.Int("requests", 100, "requests per start, each on a new connection")
	maxSeconds := flag.Float64("max-seconds", 60, "bound on the whole run, s")
	header := flag.Bool("header", true, "print the CSV header")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("cnsim: error: ")
	argv := flag.Args()
	if len(argv) == 0 || *variant == "" || *requests < 1 {
		log.Fatalf("usage: faasstart -variant NAME [-reps N] [-requests K] -- COMMAND ARGS...")
	}
	deadline := time.Now().Add(time.Duration(*maxSeconds * float64(time.Second)))
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	if *header {
		fmt.Println("measurement,variant,rep,index,seconds,modules,module_load_s")
	}
	for i := 0; i < *warmup; i++ {
		run(argv, *requests, client)
	}
	for rep := 0; rep < *reps; rep++ {
		if time.Now().After(deadline) {
			fmt.Fprintln(os.Stderr, "cnsim: error: faasstart exceeded -max-seconds")
			os.Exit(3)
		}
		s := run(argv, *requests, client)
		fmt.Printf("ready,%s,%d,0,%.9f,%s,%s\n", *variant, rep, s.ready.Seconds(), s.modules, s.moduleLoad)
		fmt.Printf("first_response,%s,%d,0,%.9f,%s,%s\n", *variant, rep, s.firstResponse.Seconds(), s.modules,
			s.moduleLoad)
		for i, d := range s.requests {
			fmt.Printf("request,%s,%d,%d,%.9f,,\n", *variant, rep, i+1, d.Seconds())
		}
	}
}
