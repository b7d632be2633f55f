// Command httplat measures net/http on 127.0.0.1: the latency of one request
// on a reused or a new connection, over HTTP/1.1 cleartext, HTTP/1.1 over TLS
// 1.3 and HTTP/2 over TLS 1.3, and the server's CPU time per request.
//
// The server runs in a child process (this program re-executed with -serve),
// so that the server's CPU time, read with getrusage(RUSAGE_SELF) (user +
// system) in the server process, holds no client work, and the two Go runtimes
// do not share a scheduler, a heap or a collector, as between two services.
// The server listens on two loopback ports, one cleartext and one TLS (TLS 1.3
// only, a self-signed ECDSA P-256 certificate made at start-up and handed to
// the client, which verifies it); on TLS it offers h2 and http/1.1 by ALPN
// (http.Server.ServeTLS sets up net/http's bundled HTTP/2). Its handler sets
// Content-Type and writes a 13-byte body. The parent asks for the server's CPU
// time over a pipe (the child's standard input and output), not over HTTP.
//
// Requests are sequential (the next starts once the previous body was read to
// the end and closed), so nothing queues. Each case has its own
// http.Transport: the "new" cases set DisableKeepAlives (one connection per
// request, for HTTP/2 a single-use connection) and do a full TLS handshake
// each time (no session cache: Go's client default, so no resumption); the
// "reused" cases keep one connection, opened by an untimed warm-up request.
// Every case has untimed warm-up requests, and the cases take turns in rounds
// so that drift in the machine's load touches them alike.
//
// -mode latency: one row per request: its latency (time.Now, monotonic, from
// just before Client.Do until the body is closed), the protocol the response
// came on (resp.Proto), whether the connection was reused (httptrace
// GotConnInfo.Reused) and the TLS version. The TLS key exchange is Go's default
// (X25519MLKEM768 first since Go 1.24). A response on another
// protocol or connection than the case asks for is an error.
//
// -mode cpu: one row per case and round: -requests requests, the server's user
// and system CPU time over them (getrusage just before and after the round),
// the part of it that the runtime's monitor thread sysmon ran (its thread's
// schedstat; with the server idle between sequential requests each request
// wakes sysmon from its deep sleep) and the client's. The CPU the server
// spends on the two pipe exchanges is counted too (a few microseconds, under
// 1/requests of the total).
//
// CSV on standard output. Bounded by -max-seconds (the server child by the
// same bound and by the end of its standard input); only 127.0.0.1.
package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const body = "hello, world\n"

// --- the server process -------------------------------------------------------

func selfSigned() (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	now := time.Now()
	template := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "httplat"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, der, nil
}

func cpuNanos() (user, sys int64) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		fail("getrusage: %v", err)
	}
	return ru.Utime.Nano(), ru.Stime.Nano()
}

// sysmonTid is the thread of the runtime's monitor sysmon: the first one the runtime starts
// (runtime.main's newm(sysmon, ...), before any other M), so the lowest thread id but the main thread's.
func sysmonTid() int {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		fail("server: threads: %v", err)
	}
	pid, lowest := os.Getpid(), 0
	for _, task := range tasks {
		if tid, err := strconv.Atoi(task.Name()); err == nil && tid != pid && (lowest == 0 || tid < lowest) {
			lowest = tid
		}
	}
	if lowest == 0 {
		fail("server: no thread besides the main one")
	}
	return lowest
}

// threadCPUNanos is a thread's time on a CPU so far (the first field of its schedstat, ns).
func threadCPUNanos(tid int) int64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/self/task/%d/schedstat", tid))
	if err != nil {
		fail("server: schedstat of thread %d: %v", tid, err)
	}
	fields := strings.Fields(string(raw))
	ns, err := strconv.ParseInt(fields[0], 10, 64)
	if err != nil {
		fail("server: schedstat of thread %d: %v", tid, err)
	}
	return ns
}

func handler(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, body)
}

// serve listens, prints "ready <cleartext addr> <tls addr> <certificate, base64 DER>",
// then answers each "cpu" line on standard input with "cpu <user ns> <system ns> <sysmon ns>"
// (the process's user and system time, and sysmon's thread's time on a CPU) until standard input ends.
func serve(maxSeconds float64) {
	time.AfterFunc(time.Duration(maxSeconds*float64(time.Second)), func() { fail("server: -max-seconds %.0f reached", maxSeconds) })
	cert, der, err := selfSigned()
	if err != nil {
		fail("server: certificate: %v", err)
	}
	plainLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail("server: listen: %v", err)
	}
	tlsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail("server: listen: %v", err)
	}
	h := http.HandlerFunc(handler)
	plain := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	secure := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}}
	go func() { fail("server: %v", plain.Serve(plainLn)) }()
	go func() { fail("server: %v", secure.ServeTLS(tlsLn, "", "")) }()
	fmt.Printf("ready %s %s %s\n", plainLn.Addr(), tlsLn.Addr(), base64.StdEncoding.EncodeToString(der))
	sysmon := sysmonTid()
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if in.Text() != "cpu" {
			fail("server: unknown command %q", in.Text())
		}
		user, sys := cpuNanos()
		fmt.Printf("cpu %d %d %d\n", user, sys, threadCPUNanos(sysmon))
	}
	os.Exit(0)
}

// --- the client process -------------------------------------------------------

type server struct {
	cmd       *exec.Cmd
	in        io.WriteCloser
	out       *bufio.Scanner
	plainAddr string
	tlsAddr   string
	roots     *x509.CertPool
}

func startServer(maxSeconds float64) (*server, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "-serve", "-max-seconds", strconv.FormatFloat(maxSeconds, 'f', -1, 64))
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{cmd: cmd, in: in, out: bufio.NewScanner(out)}
	fields, err := s.line("ready", 3)
	if err != nil {
		return nil, err
	}
	der, err := base64.StdEncoding.DecodeString(fields[2])
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	s.plainAddr, s.tlsAddr, s.roots = fields[0], fields[1], x509.NewCertPool()
	s.roots.AddCert(cert)
	return s, nil
}

func (s *server) line(tag string, n int) ([]string, error) {
	if !s.out.Scan() {
		return nil, fmt.Errorf("server ended without %q (%v)", tag, s.out.Err())
	}
	fields := strings.Fields(s.out.Text())
	if len(fields) != n+1 || fields[0] != tag {
		return nil, fmt.Errorf("server said %q, expected %q and %d fields", s.out.Text(), tag, n)
	}
	return fields[1:], nil
}

// cpu returns the server process's user and system CPU time so far, and its sysmon thread's.
func (s *server) cpu() (user, sys, sysmon time.Duration) {
	if _, err := io.WriteString(s.in, "cpu\n"); err != nil {
		fail("asking the server for its CPU time: %v", err)
	}
	fields, err := s.line("cpu", 3)
	if err != nil {
		fail("%v", err)
	}
	u, err1 := strconv.ParseInt(fields[0], 10, 64)
	y, err2 := strconv.ParseInt(fields[1], 10, 64)
	m, err3 := strconv.ParseInt(fields[2], 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		fail("server CPU time: %v", err)
	}
	return time.Duration(u), time.Duration(y), time.Duration(m)
}

func (s *server) stop() {
	s.in.Close()
	if err := s.cmd.Wait(); err != nil {
		fail("server: %v", err)
	}
}

type testCase struct {
	name  string
	tls   bool
	http2 bool
	reuse bool
}

var allCases = []testCase{
	{"h1_reused", false, false, true},
	{"h1_new", false, false, false},
	{"h1_tls_new", true, false, false},
	{"h2_tls_reused", true, true, true},
	{"h2_tls_new", true, true, false},
}

func (c testCase) wantProto() string {
	if c.http2 {
		return "HTTP/2.0"
	}
	return "HTTP/1.1"
}

type client struct {
	testCase
	url       string
	http      *http.Client
	transport *http.Transport
}

func newClient(c testCase, s *server) *client {
	transport := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		TLSClientConfig:     &tls.Config{RootCAs: s.roots, MinVersion: tls.VersionTLS13},
		TLSHandshakeTimeout: 5 * time.Second,
		ForceAttemptHTTP2:   c.http2,
		DisableKeepAlives:   !c.reuse,
		MaxIdleConnsPerHost: 1,
	}
	url := "http://" + s.plainAddr + "/"
	if c.tls {
		url = "https://" + s.tlsAddr + "/"
	}
	return &client{c, url, &http.Client{Transport: transport, Timeout: 10 * time.Second}, transport}
}

type sample struct {
	latency time.Duration
	proto   string
	reused  bool
	tlsVer  string
}

// get makes one request and checks that it came on the case's protocol and kind of connection.
func (c *client) get() sample {
	var s sample
	trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) { s.reused = info.Reused }}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodGet, c.url, nil)
	if err != nil {
		fail("%s: %v", c.name, err)
	}
	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		fail("%s: %v", c.name, err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	s.latency = time.Since(start)
	if err != nil || n != int64(len(body)) || resp.StatusCode != http.StatusOK {
		fail("%s: status %d, %d body bytes, %v", c.name, resp.StatusCode, n, err)
	}
	s.proto = resp.Proto
	if resp.TLS != nil {
		s.tlsVer = tls.VersionName(resp.TLS.Version)
	}
	return s
}

// timed is get with the checks that the sample measures what its case says.
func (c *client) timed() sample {
	s := c.get()
	switch {
	case s.proto != c.wantProto():
		fail("%s: response came on %s", c.name, s.proto)
	case s.reused != c.reuse:
		fail("%s: connection reused=%v", c.name, s.reused)
	case c.tls && s.tlsVer != "TLS 1.3":
		fail("%s: negotiated %q", c.name, s.tlsVer)
	}
	return s
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "httplat: "+format+"\n", args...)
	os.Exit(1)
}

func selectCases(names string) []testCase {
	var out []testCase
	for _, name := range strings.Split(names, ",") {
		found := false
		for _, c := range allCases {
			if c.name == name {
				out, found = append(out, c), true
			}
		}
		if !found {
			fail("-cases: unknown case %q", name)
		}
	}
	return out
}

func main() {
	mode := flag.String("mode", "latency", "latency (one row per request) or cpu (server CPU per round)")
	cases := flag.String("cases", "h1_reused,h1_new,h1_tls_new,h2_tls_reused,h2_tls_new", "cases, comma-separated")
	samples := flag.Int("samples", 2000, "latency mode: timed requests per case")
	requests := flag.Int("requests", 2000, "cpu mode: requests per case and round")
	rounds := flag.Int("rounds", 10, "rounds in which the cases take turns")
	warmup := flag.Int("warmup", 50, "untimed requests per case first")
	maxSeconds := flag.Float64("max-seconds", 30, "bound on the whole run, s")
	serveFlag := flag.Bool("serve", false, "run as the server child (internal)")
	flag.Parse()
	if *serveFlag {
		serve(*maxSeconds)
	}
	if *mode != "latency" && *mode != "cpu" {
		fail("-mode: %q is neither latency nor cpu", *mode)
	}
	if *rounds < 1 || *samples < *rounds || *requests < 1 {
		fail("-rounds %d, -samples %d, -requests %d: need rounds >= 1, samples >= rounds, requests >= 1", *rounds, *samples, *requests)
	}
	selected := selectCases(*cases)
	deadline := time.Now().Add(time.Duration(*maxSeconds * float64(time.Second)))
	time.AfterFunc(time.Until(deadline)+5*time.Second, func() { fail("-max-seconds %.0f exceeded", *maxSeconds) })
	srv, err := startServer(*maxSeconds + 5)
	if err != nil {
		fail("starting the server: %v", err)
	}
	clients := make([]*client, len(selected))
	for i, c := range selected {
		clients[i] = newClient(c, srv)
		for j := 0; j < *warmup; j++ {
			clients[i].get()
		}
	}
	procs := runtime.GOMAXPROCS(0)
	if *mode == "latency" {
		fmt.Println("case,protocol,tls_version,reused,gomaxprocs,round,sample,latency_s")
	} else {
		fmt.Println("case,protocol,gomaxprocs,round,requests,server_user_s,server_sys_s,server_cpu_s," +
			"server_sysmon_cpu_s,client_cpu_s")
	}
	sampleIndex := make([]int, len(clients))
	for round := 0; round < *rounds && time.Now().Before(deadline); round++ {
		for i, c := range clients {
			if *mode == "latency" {
				n := *samples / *rounds
				if round < *samples%*rounds {
					n++
				}
				for j := 0; j < n && time.Now().Before(deadline); j++ {
					s := c.timed()
					fmt.Printf("%s,%s,%s,%t,%d,%d,%d,%.9f\n", c.name, s.proto, s.tlsVer, s.reused, procs,
						round, sampleIndex[i], s.latency.Seconds())
					sampleIndex[i]++
				}
				continue
			}
			clientUser0, clientSys0 := cpuNanos()
			user0, sys0, sysmon0 := srv.cpu()
			for j := 0; j < *requests; j++ {
				c.timed()
			}
			user1, sys1, sysmon1 := srv.cpu()
			clientUser1, clientSys1 := cpuNanos()
			user, sys := (user1 - user0).Seconds(), (sys1 - sys0).Seconds()
			clientCPU := float64(clientUser1-clientUser0+clientSys1-clientSys0) / 1e9
			fmt.Printf("%s,%s,%d,%d,%d,%.9f,%.9f,%.9f,%.9f,%.9f\n", c.name, c.wantProto(), procs, round, *requests,
				user, sys, user+sys, (sysmon1 - sysmon0).Seconds(), clientCPU)
		}
	}
	srv.stop()
}
