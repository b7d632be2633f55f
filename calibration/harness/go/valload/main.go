// Command valload is the load generator of the validation experiments
// (calibration/validation): it sends "GET <path> HTTP/1.1" requests to -url
// over a pool of keep-alive HTTP/1.1 connections, -conns of them opened before
// the run, one request at a time per connection (no pipelining).
//
// Open loop (-rate > 0): arrivals are Poisson at -rate per second, all
// scheduled in advance from the start time (exponential gaps from a seeded
// generator, not from completions), for -seconds. A dispatcher on its own
// locked thread sleeps in nanosleep(2) until each scheduled time (not
// time.Sleep: an idle Go scheduler waits in epoll_pwait, whose timeout is whole
// milliseconds, as runtime/netpoll_epoll.go rounds a shorter delay up to 1 ms)
// and writes the request itself on an idle connection, the one used last
// (LIFO, like net/http's Transport); one reader goroutine per connection parses
// each response with net/http's ReadResponse and reads its body to the end. A
// request's latency runs from its scheduled send time to the end of its
// response body, so a late dispatch counts in it. When no connection is idle the
// dispatcher opens a new one (counted as pool_waits). The run stops at -seconds
// plus -grace-seconds even if the server stalls: requests still in flight then
// are written with status "timeout".
//
// Payload and connections: -body N sends each request as a POST with N bytes
// of body; -new-conn sends each request on a new connection of its own
// ("Connection: close"; open loop only: the connection is dialed when the
// request is due, so its handshake counts in the request's latency); an https
// -url speaks TLS 1.3 with the client certificate -tls-cert (-tls-key),
// trusting the CA -tls-ca: mutual TLS.
//
// Closed loop (-rate 0): -concurrency workers, each on its own connection, send
// back to back for -seconds; only the summary is written (its throughput is the
// capacity). With -hold-seconds H the workers' connections stay open, idle, for
// H seconds after the summary is written (so that a harness can read what
// the server holds per connection), then the program exits.
//
// Output: per-request CSV to -out (open loop; scheduled_s, sent_s, latency_s,
// status, times in seconds from the start; with -index-query the request's
// index is its query string, "GET <path>?<index>", and two columns give the
// send and end times as Unix ns, to match requests with a server's trace), and one JSON summary line on
// standard output; in open loop it includes the generator's own CPU time
// (getrusage user + system, from the first send to the end of the run), which
// it spends on the same machine as the server. Standard library only; the dispatcher's locked thread needs
// GOMAXPROCS >= 2 for the readers to run meanwhile.
package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type outcome struct {
	sent, end time.Time
	status    string
	finished  atomic.Bool // set after the fields above: a request still in flight at the bound is skipped
}

type conn struct {
	net.Conn
	reader *bufio.Reader
	next   chan int // index of the request just written on this connection
}

type pool struct {
	mu    sync.Mutex
	idle  []*conn
	addr  string
	tls   *tls.Config // nil: plain TCP
	dials atomic.Int64
}

func (p *pool) dial() (*conn, error) {
	var c net.Conn
	var err error
	if p.tls != nil {
		c, err = tls.Dial("tcp", p.addr, p.tls)
	} else {
		c, err = net.Dial("tcp", p.addr)
	}
	if err != nil {
		return nil, err
	}
	p.dials.Add(1)
	return &conn{Conn: c, reader: bufio.NewReader(c), next: make(chan int, 1)}, nil
}

func (p *pool) get() *conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.idle); n > 0 {
		c := p.idle[n-1]
		p.idle = p.idle[:n-1]
		return c
	}
	return nil
}

func (p *pool) put(c *conn) {
	p.mu.Lock()
	p.idle = append(p.idle, c)
	p.mu.Unlock()
}

// roundTrip reads one response on c and returns its status.
func roundTrip(c *conn) string {
	resp, err := http.ReadResponse(c.reader, nil)
	if err != nil {
		return "error"
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return "error"
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Sprintf("http%d", resp.StatusCode)
	}
	return "ok"
}

// setTimerSlack sets this thread's timer slack (prctl PR_SET_TIMERSLACK), 50 µs by default on Linux.
func setTimerSlack(ns uintptr) {
	const prSetTimerSlack = 29
	syscall.Syscall(syscall.SYS_PRCTL, prSetTimerSlack, ns, 0)
}

// preciseSleep blocks the calling thread in nanosleep(2).
func preciseSleep(d time.Duration) {
	ts := syscall.NsecToTimespec(d.Nanoseconds())
	for syscall.Nanosleep(&ts, &ts) == syscall.EINTR {
	}
}

// processCPU is this process's user + system CPU time (getrusage RUSAGE_SELF).
func processCPU() time.Duration {
	var usage syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &usage)
	return time.Duration(usage.Utime.Nano() + usage.Stime.Nano())
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "cnsim: error "+format+"\n", args...)
	os.Exit(2)
}

func main() {
	target := flag.String("url", "", "target URL, e.g. http://127.0.0.1:8080/work")
	rate := flag.Float64("rate", 0, "Poisson arrivals per second (0: closed loop)")
	concurrency := flag.Int("concurrency", 8, "closed-loop workers")
	conns := flag.Int("conns", 128, "keep-alive connections opened before the open-loop run")
	seconds := flag.Float64("seconds", 10, "duration of sending, s")
	grace := flag.Float64("grace-seconds", 5, "wait this long for requests in flight after sending ends")
	seed := flag.Int64("seed", 1, "seed of the arrival times")
	out := flag.String("out", "", "per-request CSV file (open loop)")
	indexQuery := flag.Bool("index-query", false, "send each request's index as its query string; Unix times in -out")
	body := flag.Int("body", 0, "send each request as a POST with this many bytes of body")
	newConn := flag.Bool("new-conn", false, "send each request on a new connection (open loop)")
	tlsCert := flag.String("tls-cert", "", "https: the client certificate (PEM)")
	tlsKey := flag.String("tls-key", "", "https: the client certificate's key (PEM)")
	tlsCA := flag.String("tls-ca", "", "https: the CA that signed the server's certificate (PEM)")
	hold := flag.Float64("hold-seconds", 0, "closed loop: keep the connections open this long after the run")
	flag.Parse()
	parsed, err := url.Parse(*target)
	if err != nil || (parsed.Scheme != "http" && parsed.Scheme != "https") || parsed.Host == "" {
		fail("-url %q must be http://host:port/path or https://host:port/path", *target)
	}
	if *rate < 0 || *conns < 1 || *concurrency < 1 || *seconds <= 0 || *body < 0 || *hold < 0 {
		fail("-rate >= 0, -conns >= 1, -concurrency >= 1, -seconds > 0, -body >= 0 and -hold-seconds >= 0 are required")
	}
	if *newConn && *rate == 0 {
		fail("-new-conn is for the open loop (-rate > 0)")
	}
	if runtime.GOMAXPROCS(0) < 2 {
		fail("GOMAXPROCS >= 2 is required (the dispatcher holds one P while it sleeps)")
	}
	requestLine := func(target string) []byte {
		method, extra, payload := "GET", "", []byte(nil)
		if *body > 0 {
			method, extra, payload = "POST", fmt.Sprintf("Content-Length: %d\r\n", *body), bytes.Repeat([]byte("x"), *body)
		}
		if *newConn {
			extra += "Connection: close\r\n"
		}
		head := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: cnsim-valload\r\n%s\r\n", method, target,
			parsed.Host, extra)
		return append([]byte(head), payload...)
	}
	request := requestLine(parsed.RequestURI())
	p := &pool{addr: parsed.Host}
	if parsed.Scheme == "https" {
		p.tls = clientTLS(*tlsCert, *tlsKey, *tlsCA)
	}
	if *rate == 0 {
		closedLoop(p, request, *concurrency, *seconds, *hold)
		return
	}

	rng := rand.New(rand.NewSource(*seed))
	var schedule []float64
	for t := rng.ExpFloat64() / *rate; t < *seconds; t += rng.ExpFloat64() / *rate {
		schedule = append(schedule, t)
	}
	results := make([]outcome, len(schedule))
	var done sync.WaitGroup
	reader := func(c *conn) {
		for i := range c.next {
			status := roundTrip(c)
			results[i].end = time.Now()
			results[i].status = status
			results[i].finished.Store(true)
			done.Done()
			if status != "ok" {
				c.Close()
				return
			}
			p.put(c)
		}
	}
	open := func() *conn {
		c, err := p.dial()
		if err != nil {
			fail("dial %s: %v", p.addr, err)
		}
		go reader(c)
		return c
	}
	oneShot := func(i int, line []byte) {
		status := "error"
		if c, err := p.dial(); err == nil {
			if _, err = c.Write(line); err == nil {
				status = roundTrip(c)
			}
			c.Close()
		}
		results[i].end = time.Now()
		results[i].status = status
		results[i].finished.Store(true)
		done.Done()
	}
	for i := 0; i < *conns && !*newConn; i++ {
		p.put(open())
	}
	warm := p.dials.Load()

	var poolWaits int64
	cpuBefore := processCPU()
	start := time.Now().Add(20 * time.Millisecond)
	runtime.LockOSThread()
	setTimerSlack(1)
	for i, t := range schedule {
		at := start.Add(time.Duration(t * float64(time.Second)))
		if wait := time.Until(at); wait > 0 {
			preciseSleep(wait)
		}
		line := request
		if *indexQuery {
			line = requestLine(fmt.Sprintf("%s?%d", parsed.EscapedPath(), i))
		}
		if *newConn {
			done.Add(1)
			results[i].sent = time.Now()
			go oneShot(i, line)
			continue
		}
		c := p.get()
		if c == nil {
			poolWaits++
			c = open()
		}
		done.Add(1)
		results[i].sent = time.Now()
		c.next <- i
		if _, err := c.Write(line); err != nil {
			c.Close() // its reader then fails to read a response and records the error
		}
	}
	runtime.UnlockOSThread()
	sendingEnd := time.Now()
	finished := make(chan struct{})
	go func() { done.Wait(); close(finished) }()
	timedOut := false
	select {
	case <-finished:
	case <-time.After(time.Duration(*grace * float64(time.Second))):
		timedOut = true
	}
	wall := time.Since(start).Seconds()
	cpu := (processCPU() - cpuBefore).Seconds()

	counts := map[string]int{}
	var last time.Time
	writer := io.Discard
	if *out != "" {
		file, err := os.Create(*out)
		if err != nil {
			fail("%v", err)
		}
		defer file.Close()
		buffered := bufio.NewWriter(file)
		defer buffered.Flush()
		writer = buffered
	}
	header, unix := "scheduled_s,sent_s,latency_s,status", ""
	if *indexQuery {
		header += ",sent_unix_ns,end_unix_ns"
	}
	fmt.Fprintln(writer, header)
	for i, t := range schedule {
		r := &results[i]
		if !r.finished.Load() {
			counts["timeout"]++
			if *indexQuery {
				unix = ",,"
			}
			fmt.Fprintf(writer, "%.7f,,,timeout%s\n", t, unix)
			continue
		}
		counts[r.status]++
		if r.end.After(last) {
			last = r.end
		}
		if *indexQuery {
			unix = fmt.Sprintf(",%d,%d", r.sent.UnixNano(), r.end.UnixNano())
		}
		fmt.Fprintf(writer, "%.7f,%.7f,%.7f,%s%s\n", t, r.sent.Sub(start).Seconds(), r.end.Sub(start).Seconds()-t, r.status, unix)
	}
	summary, _ := json.Marshal(map[string]any{
		"mode": "open", "rate": *rate, "seconds": *seconds, "scheduled": len(schedule), "statuses": counts,
		"achieved_send_rate":  float64(len(schedule)) / sendingEnd.Sub(start).Seconds(),
		"achieved_throughput": float64(counts["ok"]) / last.Sub(start).Seconds(),
		"pool_waits":          poolWaits, "new_conns": p.dials.Load() - warm, "conns": *conns, "timed_out": timedOut,
		"wall_s": wall, "cpu_s": cpu, "gomaxprocs": runtime.GOMAXPROCS(0), "go_version": runtime.Version(),
	})
	fmt.Println(string(summary))
}

// clientTLS is a TLS 1.3 client configuration presenting cert (with key) and trusting the CA in ca; a missing or
// malformed file fails naming the flag.
func clientTLS(cert, key, ca string) *tls.Config {
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		fail("-tls-cert %q and -tls-key %q: %v", cert, key, err)
	}
	pem, err := os.ReadFile(ca)
	roots := x509.NewCertPool()
	if err != nil || !roots.AppendCertsFromPEM(pem) {
		fail("-tls-ca %q: no PEM certificate (%v)", ca, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: roots, MinVersion: tls.VersionTLS13}
}

func closedLoop(p *pool, request []byte, workers int, seconds, hold float64) {
	var ok, failed atomic.Int64
	start := time.Now()
	end := start.Add(time.Duration(seconds * float64(time.Second)))
	var done sync.WaitGroup
	for w := 0; w < workers; w++ {
		c, err := p.dial()
		if err != nil {
			fail("dial %s: %v", p.addr, err)
		}
		done.Add(1)
		go func(c *conn) {
			defer done.Done()
			for time.Now().Before(end) {
				if _, err := c.Write(request); err != nil || roundTrip(c) != "ok" {
					failed.Add(1)
					return
				}
				ok.Add(1)
			}
		}(c)
		defer c.Close()
	}
	done.Wait()
	elapsed := time.Since(start).Seconds()
	summary, _ := json.Marshal(map[string]any{
		"mode": "closed", "concurrency": workers, "seconds": elapsed, "ok": ok.Load(), "errors": failed.Load(),
		"throughput": float64(ok.Load()) / elapsed, "gomaxprocs": runtime.GOMAXPROCS(0), "go_version": runtime.Version(),
		"hold_seconds": hold,
	})
	fmt.Println(string(summary))
	time.Sleep(time.Duration(hold * float64(time.Second)))
}
