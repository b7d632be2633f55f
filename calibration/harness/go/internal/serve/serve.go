// Package serve runs the harness servers (valserver, goproxy) until they are
// told to stop: SIGTERM or SIGINT, or their -max-seconds bound.
package serve

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Listen listens on addr (TCP); on failure it says why on standard error and
// exits with status 3.
func Listen(addr string) net.Listener {
	listener, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cnsim: error listen:", err)
		os.Exit(3)
	}
	return listener
}

// Until serves handler on listener until a SIGTERM or SIGINT arrives or
// maxSeconds pass (noted on standard error as "cnsim: NAME stopped at
// -max-seconds"), then closes the listener.
func Until(listener net.Listener, handler http.Handler, maxSeconds float64, name string) {
	server := &http.Server{Handler: handler}
	go server.Serve(listener)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-stop:
	case <-time.After(time.Duration(maxSeconds * float64(time.Second))):
		fmt.Fprintf(os.Stderr, "cnsim: %s stopped at -max-seconds\n", name)
	}
	listener.Close()
}
