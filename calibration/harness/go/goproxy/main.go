// Command goproxy is a sidecar proxy written in Go: the standard library's
// net/http/httputil.ReverseProxy in front of one upstream (-upstream), on
// -addr. Requests and responses pass through as a sidecar passes them: the
// proxy keeps a pool of idle upstream connections (up to -idle-conns), so
// kept-alive downstream connections are served over reused upstream ones.
//
// An outbound listener (-outbound-addr with -outbound-upstream): a second
// reverse proxy in the same process, as a mesh sidecar also carries its pod's
// calls to other services: the pod calls the next service through it. Both
// listeners share the process, its Ps and its collector.
//
// mTLS (-tls-cert, -tls-key, -tls-client-ca): the listener (not the outbound
// one) speaks TLS 1.3 and requires a client certificate signed by the CA, as a
// mesh sidecar terminates its peers' mutual TLS; the upstream stays plain.
//
// GET /stats (answered by the proxy itself, not forwarded): its runtime/metrics
// samples (package rtstats: GC cycles and CPU by class, allocation, the heap)
// and the requests it forwarded, so that a harness reads its CPU, allocation
// and collector per request.
//
// Standard output: one JSON line when ready ({"addr": ..., "gomaxprocs": ...,
// "go_version": ...}); on SIGTERM or at -max-seconds, one JSON line of totals.
// Standard library only; it listens on loopback unless told otherwise.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"runtime"
	"sync/atomic"
	"time"

	"cnsim/harness/internal/rtstats"
	"cnsim/harness/internal/serve"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	upstream := flag.String("upstream", "", "the service behind the proxy, http://host:port")
	idleConns := flag.Int("idle-conns", 1024, "idle upstream connections kept")
	outboundAddr := flag.String("outbound-addr", "", "also listen here (a sidecar's outbound side), forwarding to "+
		"-outbound-upstream")
	outboundUpstream := flag.String("outbound-upstream", "", "the service the outbound listener forwards to")
	maxSeconds := flag.Float64("max-seconds", 120, "stop after this long, s")
	tlsCert := flag.String("tls-cert", "", "serve mutual TLS with this certificate (PEM; with -tls-key, -tls-client-ca)")
	tlsKey := flag.String("tls-key", "", "the certificate's private key (PEM)")
	clientCA := flag.String("tls-client-ca", "", "the CA that must have signed a client's certificate (PEM)")
	flag.Parse()
	if (*outboundAddr == "") != (*outboundUpstream == "") {
		fmt.Fprintln(os.Stderr, "cnsim: error -outbound-addr and -outbound-upstream go together")
		os.Exit(2)
	}
	var forwarded atomic.Int64
	mux := http.NewServeMux()
	mux.Handle("/", forwarder("-upstream", *upstream, *idleConns, &forwarded))
	mux.HandleFunc("/stats", rtstats.Handler(func(stats map[string]any) { stats["requests"] = forwarded.Load() }))
	listener := serve.Listen(*addr)
	if *tlsCert != "" || *tlsKey != "" || *clientCA != "" {
		listener = tls.NewListener(listener, mutualTLS(*tlsCert, *tlsKey, *clientCA))
	}
	info := map[string]any{
		"addr": listener.Addr().String(), "gomaxprocs": runtime.GOMAXPROCS(0), "go_version": runtime.Version(),
		"upstream": *upstream,
	}
	if *outboundAddr != "" {
		outbound := serve.Listen(*outboundAddr)
		info["outbound_addr"], info["outbound_upstream"] = outbound.Addr().String(), *outboundUpstream
		go (&http.Server{Handler: forwarder("-outbound-upstream", *outboundUpstream, *idleConns, &forwarded)}).Serve(
			outbound)
	}
	ready, _ := json.Marshal(info)
	fmt.Println(string(ready))
	serve.Until(listener, mux, *maxSeconds, "goproxy")
	done, _ := json.Marshal(map[string]any{"requests": forwarded.Load()})
	fmt.Println(string(done))
}

// forwarder is a reverse proxy to upstream (the value of flag) keeping up to idleConns idle connections, counting
// what it forwarded; a malformed upstream exits with status 2, naming the flag.
func forwarder(flag, upstream string, idleConns int, forwarded *atomic.Int64) http.Handler {
	target, err := url.Parse(upstream)
	if err != nil || target.Scheme != "http" || target.Host == "" {
		fmt.Fprintf(os.Stderr, "cnsim: error %s must be http://host:port, got %q\n", flag, upstream)
		os.Exit(2)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = &http.Transport{
		MaxIdleConns: idleConns, MaxIdleConnsPerHost: idleConns, IdleConnTimeout: 90 * time.Second,
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proxy.ServeHTTP(w, r)
		forwarded.Add(1)
	})
}

// mutualTLS is a TLS 1.3 server configuration presenting cert (with key) and requiring a client certificate
// signed by the CA in clientCA; a missing or malformed file exits with status 2, naming the flag.
func mutualTLS(cert, key, clientCA string) *tls.Config {
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		fmt.Fprintf(os.Stderr, "cnsim: error -tls-cert %q and -tls-key %q: %v\n", cert, key, err)
		os.Exit(2)
	}
	pem, err := os.ReadFile(clientCA)
	pool := x509.NewCertPool()
	if err != nil || !pool.AppendCertsFromPEM(pem) {
		fmt.Fprintf(os.Stderr, "cnsim: error -tls-client-ca %q: no PEM certificate (%v)\n", clientCA, err)
		os.Exit(2)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, ClientAuth: tls.RequireAndVerifyClientCert,
		ClientCAs: pool, MinVersion: tls.VersionTLS13}
}
