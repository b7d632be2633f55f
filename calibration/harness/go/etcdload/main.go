// Command etcdload measures a running etcd through its gRPC gateway (the JSON
// API of etcd 3.4: POST /v3/kv/put, /v3/kv/range, /v3/watch, keys and values
// base64-encoded), with the standard library only. Writes go to the leader,
// found by POST /v3/maintenance/status on each of -endpoints (the member whose
// member_id is the leader), so that no put is forwarded between members.
//
// Modes (-mode):
//
//   - put: -clients workers, each in a closed loop on its own keep-alive
//     connection, put values of -value-bytes to distinct keys for -seconds; the
//     latency of each put runs from before its request is written to the end of
//     its response body.
//   - range: -keys keys of -value-bytes are written first (32 workers), then
//     -ranges ranges of the whole prefix are read one at a time, alternately
//     serializable (answered from the member's own store) and linearizable (a
//     ReadIndex round to a quorum first); the latency of each.
//   - watch: -watchers watch streams on the key prefix are opened (each its own
//     connection, each waits for its "created" response), then -puts puts of
//     -value-bytes are sent one at a time at -rate per second; each value starts
//     with the put's send time (Unix ns) and every watcher records, per event,
//     its receipt time minus that send time: the delivery latency.
//   - open: Poisson puts at -rate per second for -seconds (scheduled in advance
//     from a seeded generator; latency from the scheduled time), with -watchers
//     watch streams recording delivery latency as in watch.
//
// Output: one JSON line on standard output with the latencies' count, mean and
// quantiles (p50, p90, p99, max) in seconds, per kind of sample ("put", "range_serializable",
// "range_linearizable", "delivery": one sample per event and watcher),
// and the run's throughput. With -out a CSV of every sample (kind, latency_s).
package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

var (
	endpoints  = flag.String("endpoints", "http://127.0.0.1:2379", "comma-separated client URLs of the members")
	mode       = flag.String("mode", "put", "put, range, watch or open")
	valueBytes = flag.Int("value-bytes", 100, "bytes of each value")
	clients    = flag.Int("clients", 1, "closed-loop put workers (mode put)")
	seconds    = flag.Float64("seconds", 3, "duration of the put phase (modes put and open)")
	keys       = flag.Int("keys", 1000, "keys written before the ranges (mode range)")
	ranges     = flag.Int("ranges", 40, "ranges read (mode range)")
	watchers   = flag.Int("watchers", 1, "watch streams (modes watch and open)")
	puts       = flag.Int("puts", 50, "puts sent one at a time (mode watch)")
	rate       = flag.Float64("rate", 20, "puts per second (modes watch and open)")
	seed       = flag.Int64("seed", 1, "seed of the open-loop arrival times")
	prefix     = flag.String("prefix", "cnsim/", "key prefix")
	out        = flag.String("out", "", "CSV of every sample (kind, latency_s)")
	graceS     = flag.Float64("grace-seconds", 5, "wait for watch events after the last put")
)

type samples struct {
	mu   sync.Mutex
	data map[string][]float64
}

func (s *samples) add(kind string, v float64) {
	s.mu.Lock()
	s.data[kind] = append(s.data[kind], v)
	s.mu.Unlock()
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// prefixEnd is the range_end of every key with prefix p: p with its last byte incremented.
func prefixEnd(p string) string {
	b := []byte(p)
	b[len(b)-1]++
	return string(b)
}

var client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4096, MaxIdleConns: 4096,
	DisableCompression: true}, Timeout: 60 * time.Second}

func post(url string, body any) ([]byte, error) {
	payload, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	resp, err := client.Post(url, "application/json", bytes.NewReader(payload))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %d %s", url, resp.StatusCode, strings.TrimSpace(string(data)))
	}
	return data, nil
}

// leader returns the client URL of the member that is the leader.
func leader(urls []string) (string, error) {
	for _, u := range urls {
		data, err := post(u+"/v3/maintenance/status", map[string]any{})
		if err != nil {
			return "", err
		}
		var st struct {
			Header struct {
				MemberID string `json:"member_id"`
			} `json:"header"`
			Leader string `json:"leader"`
		}
		if err := json.Unmarshal(data, &st); err != nil {
			return "", err
		}
		if st.Leader != "" && st.Leader == st.Header.MemberID {
			return u, nil
		}
	}
	return "", fmt.Errorf("no leader among %v", urls)
}

func value(sent time.Time, n int) string {
	stamp := strconv.FormatInt(sent.UnixNano(), 10) + ";"
	if n <= len(stamp) {
		return stamp
	}
	return stamp + strings.Repeat("x", n-len(stamp))
}

func put(url, key string, n int) (time.Time, error) {
	sent := time.Now()
	_, err := post(url+"/v3/kv/put", map[string]string{"key": b64(key), "value": b64(value(sent, n))})
	return sent, err
}

// watch opens a watch stream on the prefix; ready is closed when it is created; every event's delivery
// latency is passed to got.
func watch(url string, ready chan<- struct{}, got func(float64), stop <-chan struct{}) error {
	body, _ := json.Marshal(map[string]any{"create_request": map[string]string{
		"key": b64(*prefix), "range_end": b64(prefixEnd(*prefix))}})
	req, err := http.NewRequest("POST", url+"/v3/watch", bytes.NewReader(body))
	if err != nil {
		return err
	}
	watchClient := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	resp, err := watchClient.Do(req)
	if err != nil {
		return err
	}
	go func() { <-stop; resp.Body.Close() }()
	reader := bufio.NewReaderSize(resp.Body, 1<<20)
	created := false
	for {
		line, err := reader.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			now := time.Now()
			var msg struct {
				Result struct {
					Created bool `json:"created"`
					Events  []struct {
						Kv struct {
							Value string `json:"value"`
						} `json:"kv"`
					} `json:"events"`
				} `json:"result"`
			}
			if err := json.Unmarshal(line, &msg); err != nil {
				return fmt.Errorf("watch: %v: %.200s", err, line)
			}
			if msg.Result.Created && !created {
				created = true
				close(ready)
			}
			for _, ev := range msg.Result.Events {
				raw, err := base64.StdEncoding.DecodeString(ev.Kv.Value)
				if err != nil {
					return err
				}
				stamp, _, _ := strings.Cut(string(raw), ";")
				ns, err := strconv.ParseInt(stamp, 10, 64)
				if err != nil {
					return fmt.Errorf("watch: value without a time stamp: %.40q", raw)
				}
				got(float64(now.UnixNano()-ns) / 1e9)
			}
		}
		if err != nil {
			select {
			case <-stop:
				return nil
			default:
				return err
			}
		}
	}
}

func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	if i < 0 {
		i = 0
	}
	return sorted[i]
}

func summary(s *samples, elapsed float64) map[string]any {
	res := map[string]any{"elapsed_s": elapsed}
	for kind, data := range s.data {
		sorted := append([]float64(nil), data...)
		sort.Float64s(sorted)
		sum := 0.0
		for _, v := range sorted {
			sum += v
		}
		res[kind] = map[string]any{"n": len(sorted), "mean_s": sum / float64(len(sorted)),
			"p50_s": quantile(sorted, 0.5), "p90_s": quantile(sorted, 0.9), "p99_s": quantile(sorted, 0.99),
			"max_s": quantile(sorted, 1)}
	}
	return res
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "etcdload:", err)
	os.Exit(1)
}

func main() {
	flag.Parse()
	urls := strings.Split(*endpoints, ",")
	url, err := leader(urls)
	if err != nil {
		fail(err)
	}
	s := &samples{data: map[string][]float64{}}
	start := time.Now()
	var elapsed float64
	switch *mode {
	case "put":
		var wg sync.WaitGroup
		deadline := start.Add(time.Duration(*seconds * float64(time.Second)))
		for c := 0; c < *clients; c++ {
			wg.Add(1)
			go func(c int) {
				defer wg.Done()
				for i := 0; time.Now().Before(deadline); i++ {
					sent, err := put(url, fmt.Sprintf("%sc%d/%d", *prefix, c, i), *valueBytes)
					if err != nil {
						fail(err)
					}
					s.add("put", time.Since(sent).Seconds())
				}
			}(c)
		}
		wg.Wait()
		elapsed = time.Since(start).Seconds()
	case "range":
		var wg sync.WaitGroup
		next := make(chan int)
		for c := 0; c < 32; c++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					if _, err := put(url, fmt.Sprintf("%s%08d", *prefix, i), *valueBytes); err != nil {
						fail(err)
					}
				}
			}()
		}
		for i := 0; i < *keys; i++ {
			next <- i
		}
		close(next)
		wg.Wait()
		start = time.Now()
		for i := 0; i < *ranges; i++ {
			serializable := i%2 == 0
			sent := time.Now()
			data, err := post(url+"/v3/kv/range", map[string]any{"key": b64(*prefix),
				"range_end": b64(prefixEnd(*prefix)), "serializable": serializable})
			if err != nil {
				fail(err)
			}
			lat := time.Since(sent).Seconds()
			var res struct {
				Count string `json:"count"`
			}
			if err := json.Unmarshal(data, &res); err != nil || res.Count != strconv.Itoa(*keys) {
				fail(fmt.Errorf("range returned count %q, want %d (%v)", res.Count, *keys, err))
			}
			if serializable {
				s.add("range_serializable", lat)
			} else {
				s.add("range_linearizable", lat)
			}
		}
		elapsed = time.Since(start).Seconds()
	case "watch", "open":
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for i := 0; i < *watchers; i++ {
			ready := make(chan struct{})
			wg.Add(1)
			go func() {
				err := watch(url, ready, func(lat float64) {
					s.add("delivery", lat)
				}, stop)
				if err != nil {
					fail(err)
				}
			}()
			go func() { <-ready; wg.Done() }()
		}
		wg.Wait()
		var arrivals []time.Duration
		if *mode == "watch" {
			for i := 0; i < *puts; i++ {
				arrivals = append(arrivals, time.Duration(float64(i)/(*rate)*float64(time.Second)))
			}
		} else {
			rng := rand.New(rand.NewSource(*seed))
			for t := rng.ExpFloat64() / *rate; t < *seconds; t += rng.ExpFloat64() / *rate {
				arrivals = append(arrivals, time.Duration(t*float64(time.Second)))
			}
		}
		start = time.Now()
		var pw sync.WaitGroup
		for i, at := range arrivals {
			time.Sleep(time.Until(start.Add(at)))
			key := fmt.Sprintf("%sw/%d", *prefix, i)
			scheduled := start.Add(at)
			if *mode == "watch" {
				sent, err := put(url, key, *valueBytes)
				if err != nil {
					fail(err)
				}
				s.add("put", time.Since(sent).Seconds())
				continue
			}
			pw.Add(1)
			go func() {
				defer pw.Done()
				if _, err := put(url, key, *valueBytes); err != nil {
					fail(err)
				}
				s.add("put", time.Since(scheduled).Seconds())
			}()
		}
		pw.Wait()
		elapsed = time.Since(start).Seconds()
		want := len(arrivals) * *watchers
		deadline := time.Now().Add(time.Duration(*graceS * float64(time.Second)))
		for time.Now().Before(deadline) {
			s.mu.Lock()
			n := len(s.data["delivery"])
			s.mu.Unlock()
			if n >= want {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		close(stop)
		s.mu.Lock()
		n := len(s.data["delivery"])
		s.mu.Unlock()
		if n < want {
			fail(fmt.Errorf("%d of %d watch events received within %.1f s of the last put", n, want, *graceS))
		}
	default:
		fail(fmt.Errorf("unknown -mode %q", *mode))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	res := summary(s, elapsed)
	res["leader"] = url
	line, _ := json.Marshal(res)
	fmt.Println(string(line))
	if *out != "" {
		var b strings.Builder
		b.WriteString("kind,latency_s\n")
		for kind, data := range s.data {
			for _, v := range data {
				fmt.Fprintf(&b, "%s,%.9f\n", kind, v)
			}
		}
		if err := os.WriteFile(*out, []byte(b.String()), 0o644); err != nil {
			fail(err)
		}
	}
}
