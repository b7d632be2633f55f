// Command faasfn is a small HTTP function as a FaaS platform starts it: a
// net/http server on 127.0.0.1 whose handler reads the query parameter name
// and answers a small JSON object (encoding/json), the Go counterpart of the
// Node functions in harness/faas/. The faasstart driver execs it and times it
// to its first response.
//
// It listens on an ephemeral port, then prints "cnsim-ready PORT 0 0" on
// standard output (the port, modules loaded and module-loading seconds, as
// the Node functions print theirs; a static Go binary loads no modules), and
// serves until SIGTERM or -max-seconds. Standard library only; loopback only.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"

	"cnsim/harness/internal/serve"
)

type reply struct {
	Message string `json:"message"`
	Length  int    `json:"length"`
}

func handle(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("name")
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(reply{Message: "hello " + name, Length: len(name)}); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}

func main() {
	maxSeconds := flag.Float64("max-seconds", 60, "bound on the process's life, s")
	flag.Parse()
	listener := serve.Listen("127.0.0.1:0")
	fmt.Printf("cnsim-ready %d 0 0\n", listener.Addr().(*net.TCPAddr).Port)
	os.Stdout.Sync()
	serve.Until(listener, http.HandlerFunc(handle), *maxSeconds, "faasfn")
}
