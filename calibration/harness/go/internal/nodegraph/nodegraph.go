// Package nodegraph builds the live heap of the calibration and validation
// programs: 64-byte nodes, each holding two pointers (to the previous node and
// to a node chosen by a fixed stride) and 48 bytes of payload, indexed by a
// slice. Marking it costs what marking a pointer-rich heap of small objects
// costs: the collector greys every node and scans three pointer words per
// node (its two and its slot in the index).
package nodegraph

import "time"

// Node is one 64-byte object of the graph.
type Node struct {
	Left, Right *Node
	Payload     [48]byte
}

// Build makes bytes/64 nodes; it stops early and reports false if the deadline passes
// (checked every 65,536 nodes; a zero deadline never passes).
func Build(bytes int64, deadline time.Time) ([]*Node, bool) {
	count := bytes / 64
	nodes := make([]*Node, 0, count)
	for i := int64(0); i < count; i++ {
		n := &Node{}
		if i > 0 {
			n.Left = nodes[i-1]
			n.Right = nodes[(i*7919)%i]
		}
		nodes = append(nodes, n)
		if i%65536 == 0 && !deadline.IsZero() && time.Now().After(deadline) {
			return nodes, false
		}
	}
	return nodes, true
}
