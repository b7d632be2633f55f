// Command goproxy is a sidecar proxy written in Go: the standard library's
// net/http/httputil.ReverseProxy in front of one upstream (-upstream), on
// -addr. Requests and responses pass through as a sidecar passes them: the
// proxy keeps a pool of idle upstream connections (up to -idle-conns), so
// kept-alive downstream connections are served over reused upstream ones.
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
	maxSeconds := flag.Float64("max-seconds", 120, "stop after this long, s")
	flag.Parse()
	target, err := url.Parse(*upstream)
	if err != nil || target.Scheme != "http" || target.Host == "" {
		fmt.Fprintln(os.Stderr, "cnsim: error -upstream must be http://host:port, got", *upstream)
		os.Exit(2)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = &http.Transport{
		MaxIdleConns: *idleConns, MaxIdleConnsPerHost: *idleConns, IdleConnTimeout: 90 * time.Second,
	}
	var forwarded atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		proxy.ServeHTTP(w, r)
		forwarded.Add(1)
	})
	mux.HandleFunc("/stats", rtstats.Handler(func(stats map[string]any) { stats["requests"] = forwarded.Load() }))
	listener := serve.Listen(*addr)
	ready, _ := json.Marshal(map[string]any{
		"addr": listener.Addr().String(), "gomaxprocs": runtime.GOMAXPROCS(0), "go_version": runtime.Version(),
		"upstream": *upstream,
	})
	fmt.Println(string(ready))
	serve.Until(listener, mux, *maxSeconds, "goproxy")
	done, _ := json.Marshal(map[string]any{"requests": forwarded.Load()})
	fmt.Println(string(done))
}
