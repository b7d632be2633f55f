// Command jsoncodec measures encoding/json on an object of about 8 KB (a record
// with nested slices, maps, strings and numbers, the shape of a typical API
// payload). testing.Benchmark runs Marshal and Unmarshal -reps times each and
// reports ns/op, B/op and allocs/op per repetition (testing.Benchmark picks the
// iteration count so each repetition lasts about -benchtime, default 1 s).
//
// CSV on standard output; no network.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"testing"
)

type Item struct {
	ID       int64             `json:"id"`
	Name     string            `json:"name"`
	Price    float64           `json:"price"`
	Tags     []string          `json:"tags"`
	Attrs    map[string]string `json:"attrs"`
	InStock  bool              `json:"in_stock"`
	Quantity int               `json:"quantity"`
}

type Order struct {
	OrderID  string  `json:"order_id"`
	Customer string  `json:"customer"`
	Email    string  `json:"email"`
	Address  string  `json:"address"`
	Items    []Item  `json:"items"`
	Total    float64 `json:"total"`
	Currency string  `json:"currency"`
	Notes    string  `json:"notes"`
}

func makeOrder(items int) Order {
	o := Order{OrderID: "ord-2024-000123", Customer: "Ada Lovelace", Email: "ada@example.com",
		Address: "12 Analytical Engine Lane, London", Currency: "EUR", Notes: "leave at the door"}
	for i := 0; i < items; i++ {
		it := Item{ID: int64(100000 + i), Name: "item number " + strconv.Itoa(i), Price: 9.99 + float64(i),
			Tags: []string{"red", "large", "sale"}, Attrs: map[string]string{"colour": "red", "size": "L"},
			InStock: i%2 == 0, Quantity: i % 7}
		o.Items = append(o.Items, it)
		o.Total += it.Price
	}
	return o
}

func main() {
	reps := flag.Int("reps", 5, "benchmark repetitions per operation")
	target := flag.Int("bytes", 8192, "approximate encoded size of the object, bytes")
	benchtime := flag.String("benchtime", "1s", "duration of each repetition (testing's -test.benchtime)")
	testing.Init()
	flag.Parse()
	if err := flag.Set("test.benchtime", *benchtime); err != nil {
		fmt.Fprintln(os.Stderr, "cnsim: error", err)
		os.Exit(2)
	}
	items := 1
	for {
		b, _ := json.Marshal(makeOrder(items))
		if len(b) >= *target {
			break
		}
		items++
	}
	order := makeOrder(items)
	encoded, err := json.Marshal(order)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cnsim: error", err)
		os.Exit(1)
	}
	fmt.Println("operation,object_bytes,rep,iterations,ns_per_op,bytes_per_op,allocs_per_op,gomaxprocs")
	procs := runtime.GOMAXPROCS(0)
	ops := []struct {
		name string
		fn   func(b *testing.B)
	}{
		{"marshal", func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := json.Marshal(&order); err != nil {
					b.Fatal(err)
				}
			}
		}},
		{"unmarshal", func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				var o Order
				if err := json.Unmarshal(encoded, &o); err != nil {
					b.Fatal(err)
				}
			}
		}},
	}
	for _, op := range ops {
		for rep := 0; rep < *reps; rep++ {
			r := testing.Benchmark(op.fn)
			fmt.Printf("%s,%d,%d,%d,%.1f,%d,%d,%d\n", op.name, len(encoded), rep, r.N,
				float64(r.T.Nanoseconds())/float64(r.N), r.AllocedBytesPerOp(), r.AllocsPerOp(), procs)
		}
	}
}
