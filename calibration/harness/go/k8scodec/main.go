// Command k8scodec measures what kube-apiserver pays to encode and decode one
// Pod, in JSON (encoding/json, as the API server's JSON serializer does) and
// in the protobuf wire format (written the way generated Kubernetes code
// writes it: each message's size computed first, then its fields appended,
// length-prefixed messages nested). The Pod has the fields a typical running
// pod carries (metadata with labels, annotations and an owner; one container
// with ports, env, resources and mounts; volumes, tolerations; status with
// conditions and a container status). Only the standard library is used: the
// Go module proxy is not reachable here, so Kubernetes' own generated code
// cannot be built; this program stands in for it.
//
// testing.Benchmark runs each operation -reps times; CSV on standard output.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/bits"
	"os"
	"runtime"
	"strconv"
	"testing"
)

type OwnerReference struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Name       string `json:"name"`
	UID        string `json:"uid"`
	Controller bool   `json:"controller"`
}

type ObjectMeta struct {
	Name              string            `json:"name"`
	GenerateName      string            `json:"generateName"`
	Namespace         string            `json:"namespace"`
	UID               string            `json:"uid"`
	ResourceVersion   string            `json:"resourceVersion"`
	CreationTimestamp int64             `json:"creationTimestamp"`
	Labels            map[string]string `json:"labels"`
	Annotations       map[string]string `json:"annotations"`
	OwnerReferences   []OwnerReference  `json:"ownerReferences"`
}

type ContainerPort struct {
	Name          string `json:"name"`
	ContainerPort int32  `json:"containerPort"`
	Protocol      string `json:"protocol"`
}

type EnvVar struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type VolumeMount struct {
	Name      string `json:"name"`
	MountPath string `json:"mountPath"`
	ReadOnly  bool   `json:"readOnly"`
}

type Container struct {
	Name         string            `json:"name"`
	Image        string            `json:"image"`
	Args         []string          `json:"args"`
	Ports        []ContainerPort   `json:"ports"`
	Env          []EnvVar          `json:"env"`
	Requests     map[string]string `json:"requests"`
	Limits       map[string]string `json:"limits"`
	VolumeMounts []VolumeMount     `json:"volumeMounts"`
}

type Volume struct {
	Name      string `json:"name"`
	ConfigMap string `json:"configMap"`
}

type Toleration struct {
	Key               string `json:"key"`
	Operator          string `json:"operator"`
	Effect            string `json:"effect"`
	TolerationSeconds int64  `json:"tolerationSeconds"`
}

type PodSpec struct {
	Containers         []Container  `json:"containers"`
	Volumes            []Volume     `json:"volumes"`
	Tolerations        []Toleration `json:"tolerations"`
	NodeName           string       `json:"nodeName"`
	ServiceAccountName string       `json:"serviceAccountName"`
	RestartPolicy      string       `json:"restartPolicy"`
	SchedulerName      string       `json:"schedulerName"`
}

type PodCondition struct {
	Type               string `json:"type"`
	Status             string `json:"status"`
	LastTransitionTime int64  `json:"lastTransitionTime"`
}

type ContainerStatus struct {
	Name         string `json:"name"`
	Ready        bool   `json:"ready"`
	RestartCount int32  `json:"restartCount"`
	Image        string `json:"image"`
	ImageID      string `json:"imageID"`
	ContainerID  string `json:"containerID"`
	StartedAt    int64  `json:"startedAt"`
}

type PodStatus struct {
	Phase             string            `json:"phase"`
	Conditions        []PodCondition    `json:"conditions"`
	HostIP            string            `json:"hostIP"`
	PodIP             string            `json:"podIP"`
	StartTime         int64             `json:"startTime"`
	ContainerStatuses []ContainerStatus `json:"containerStatuses"`
	QOSClass          string            `json:"qosClass"`
}

type Pod struct {
	Metadata ObjectMeta `json:"metadata"`
	Spec     PodSpec    `json:"spec"`
	Status   PodStatus  `json:"status"`
}

func makePod(envs int) Pod {
	c := Container{Name: "app", Image: "registry.example.com/team/app:v1.42.7", Args: []string{"--port=8080", "--log-level=info"},
		Ports:        []ContainerPort{{"http", 8080, "TCP"}, {"metrics", 9090, "TCP"}},
		Requests:     map[string]string{"cpu": "250m", "memory": "256Mi"},
		Limits:       map[string]string{"cpu": "1", "memory": "512Mi"},
		VolumeMounts: []VolumeMount{{"config", "/etc/app", true}, {"kube-api-access-x7k2p", "/var/run/secrets/kubernetes.io/serviceaccount", true}}}
	for i := 0; i < envs; i++ {
		c.Env = append(c.Env, EnvVar{"APP_SETTING_" + strconv.Itoa(i), "value-" + strconv.Itoa(i*7919)})
	}
	return Pod{
		Metadata: ObjectMeta{Name: "app-7d9f8b6c5d-x2k4q", GenerateName: "app-7d9f8b6c5d-", Namespace: "team-a",
			UID: "0f6d3a52-8c1e-4d7b-9b1a-2f4e6c8a0b13", ResourceVersion: "123456789", CreationTimestamp: 1733400000,
			Labels:          map[string]string{"app": "app", "pod-template-hash": "7d9f8b6c5d", "tier": "backend", "version": "v1.42.7"},
			Annotations:     map[string]string{"prometheus.io/scrape": "true", "prometheus.io/port": "9090", "kubectl.kubernetes.io/restartedAt": "2024-12-05T12:00:00Z"},
			OwnerReferences: []OwnerReference{{"apps/v1", "ReplicaSet", "app-7d9f8b6c5d", "5a1c9e2d-3b7f-4e8a-a6d0-9c2b4f1e7a35", true}}},
		Spec: PodSpec{Containers: []Container{c},
			Volumes:     []Volume{{"config", "app-config"}, {"kube-api-access-x7k2p", "kube-root-ca.crt"}},
			Tolerations: []Toleration{{"node.kubernetes.io/not-ready", "Exists", "NoExecute", 300}, {"node.kubernetes.io/unreachable", "Exists", "NoExecute", 300}},
			NodeName:    "node-0123.zone-b.example.internal", ServiceAccountName: "default", RestartPolicy: "Always", SchedulerName: "default-scheduler"},
		Status: PodStatus{Phase: "Running",
			Conditions: []PodCondition{{"Initialized", "True", 1733400001}, {"Ready", "True", 1733400009},
				{"ContainersReady", "True", 1733400009}, {"PodScheduled", "True", 1733400000}},
			HostIP: "10.0.12.34", PodIP: "10.244.7.89", StartTime: 1733400001, QOSClass: "Burstable",
			ContainerStatuses: []ContainerStatus{{"app", true, 0, "registry.example.com/team/app:v1.42.7",
				"registry.example.com/team/app@sha256:3f1c9a7e5b2d4c6e8f0a1b3c5d7e9f1a2b4c6d8e0f1a3b5c7d9e1f2a4b6c8d0e",
				"containerd://8e4f2a6c1b3d5e7f9a0b2c4d6e8f1a3b5c7d9e0f2a4b6c8d1e3f5a7b9c0d2e4f", 1733400008}}},
	}
}

// --- protobuf wire format --------------------------------------------------

func sizeVarint(v uint64) int { return (bits.Len64(v|1) + 6) / 7 }

func appendVarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func tag(field int, wire int) uint64 { return uint64(field<<3 | wire) }

func sizeString(field int, s string) int {
	return sizeVarint(tag(field, 2)) + sizeVarint(uint64(len(s))) + len(s)
}

func appendString(b []byte, field int, s string) []byte {
	b = appendVarint(b, tag(field, 2))
	b = appendVarint(b, uint64(len(s)))
	return append(b, s...)
}

func sizeInt(field int, v int64) int { return sizeVarint(tag(field, 0)) + sizeVarint(uint64(v)) }

func appendInt(b []byte, field int, v int64) []byte {
	return appendVarint(appendVarint(b, tag(field, 0)), uint64(v))
}

func boolInt(v bool) int64 {
	if v {
		return 1
	}
	return 0
}

func sizeMessage(field int, n int) int { return sizeVarint(tag(field, 2)) + sizeVarint(uint64(n)) + n }

func appendHeader(b []byte, field int, n int) []byte {
	return appendVarint(appendVarint(b, tag(field, 2)), uint64(n))
}

func sizeMap(field int, m map[string]string) int {
	n := 0
	for k, v := range m {
		n += sizeMessage(field, sizeString(1, k)+sizeString(2, v))
	}
	return n
}

func appendMap(b []byte, field int, m map[string]string) []byte {
	for k, v := range m {
		b = appendHeader(b, field, sizeString(1, k)+sizeString(2, v))
		b = appendString(appendString(b, 1, k), 2, v)
	}
	return b
}

func (o *OwnerReference) size() int {
	return sizeString(1, o.APIVersion) + sizeString(2, o.Kind) + sizeString(3, o.Name) + sizeString(4, o.UID) + sizeInt(5, boolInt(o.Controller))
}

func (o *OwnerReference) marshal(b []byte) []byte {
	b = appendString(appendString(appendString(appendString(b, 1, o.APIVersion), 2, o.Kind), 3, o.Name), 4, o.UID)
	return appendInt(b, 5, boolInt(o.Controller))
}

func (m *ObjectMeta) size() int {
	n := sizeString(1, m.Name) + sizeString(2, m.GenerateName) + sizeString(3, m.Namespace) + sizeString(4, m.UID) +
		sizeString(5, m.ResourceVersion) + sizeInt(6, m.CreationTimestamp) + sizeMap(7, m.Labels) + sizeMap(8, m.Annotations)
	for i := range m.OwnerReferences {
		n += sizeMessage(9, m.OwnerReferences[i].size())
	}
	return n
}

func (m *ObjectMeta) marshal(b []byte) []byte {
	b = appendString(appendString(appendString(appendString(b, 1, m.Name), 2, m.GenerateName), 3, m.Namespace), 4, m.UID)
	b = appendInt(appendString(b, 5, m.ResourceVersion), 6, m.CreationTimestamp)
	b = appendMap(appendMap(b, 7, m.Labels), 8, m.Annotations)
	for i := range m.OwnerReferences {
		b = m.OwnerReferences[i].marshal(appendHeader(b, 9, m.OwnerReferences[i].size()))
	}
	return b
}

func (c *Container) size() int {
	n := sizeString(1, c.Name) + sizeString(2, c.Image) + sizeMap(6, c.Requests) + sizeMap(7, c.Limits)
	for _, a := range c.Args {
		n += sizeString(3, a)
	}
	for _, p := range c.Ports {
		n += sizeMessage(4, sizeString(1, p.Name)+sizeInt(2, int64(p.ContainerPort))+sizeString(3, p.Protocol))
	}
	for _, e := range c.Env {
		n += sizeMessage(5, sizeString(1, e.Name)+sizeString(2, e.Value))
	}
	for _, v := range c.VolumeMounts {
		n += sizeMessage(8, sizeString(1, v.Name)+sizeString(2, v.MountPath)+sizeInt(3, boolInt(v.ReadOnly)))
	}
	return n
}

func (c *Container) marshal(b []byte) []byte {
	b = appendString(appendString(b, 1, c.Name), 2, c.Image)
	for _, a := range c.Args {
		b = appendString(b, 3, a)
	}
	for _, p := range c.Ports {
		b = appendHeader(b, 4, sizeString(1, p.Name)+sizeInt(2, int64(p.ContainerPort))+sizeString(3, p.Protocol))
		b = appendString(appendInt(appendString(b, 1, p.Name), 2, int64(p.ContainerPort)), 3, p.Protocol)
	}
	for _, e := range c.Env {
		b = appendString(appendString(appendHeader(b, 5, sizeString(1, e.Name)+sizeString(2, e.Value)), 1, e.Name), 2, e.Value)
	}
	b = appendMap(appendMap(b, 6, c.Requests), 7, c.Limits)
	for _, v := range c.VolumeMounts {
		b = appendHeader(b, 8, sizeString(1, v.Name)+sizeString(2, v.MountPath)+sizeInt(3, boolInt(v.ReadOnly)))
		b = appendInt(appendString(appendString(b, 1, v.Name), 2, v.MountPath), 3, boolInt(v.ReadOnly))
	}
	return b
}

func (s *PodSpec) size() int {
	n := sizeString(4, s.NodeName) + sizeString(5, s.ServiceAccountName) + sizeString(6, s.RestartPolicy) + sizeString(7, s.SchedulerName)
	for i := range s.Containers {
		n += sizeMessage(1, s.Containers[i].size())
	}
	for _, v := range s.Volumes {
		n += sizeMessage(2, sizeString(1, v.Name)+sizeString(2, v.ConfigMap))
	}
	for _, t := range s.Tolerations {
		n += sizeMessage(3, sizeString(1, t.Key)+sizeString(2, t.Operator)+sizeString(3, t.Effect)+sizeInt(4, t.TolerationSeconds))
	}
	return n
}

func (s *PodSpec) marshal(b []byte) []byte {
	for i := range s.Containers {
		b = s.Containers[i].marshal(appendHeader(b, 1, s.Containers[i].size()))
	}
	for _, v := range s.Volumes {
		b = appendString(appendString(appendHeader(b, 2, sizeString(1, v.Name)+sizeString(2, v.ConfigMap)), 1, v.Name), 2, v.ConfigMap)
	}
	for _, t := range s.Tolerations {
		b = appendHeader(b, 3, sizeString(1, t.Key)+sizeString(2, t.Operator)+sizeString(3, t.Effect)+sizeInt(4, t.TolerationSeconds))
		b = appendInt(appendString(appendString(appendString(b, 1, t.Key), 2, t.Operator), 3, t.Effect), 4, t.TolerationSeconds)
	}
	b = appendString(appendString(appendString(appendString(b, 4, s.NodeName), 5, s.ServiceAccountName), 6, s.RestartPolicy), 7, s.SchedulerName)
	return b
}

func (c *ContainerStatus) size() int {
	return sizeString(1, c.Name) + sizeInt(2, boolInt(c.Ready)) + sizeInt(3, int64(c.RestartCount)) + sizeString(4, c.Image) +
		sizeString(5, c.ImageID) + sizeString(6, c.ContainerID) + sizeInt(7, c.StartedAt)
}

func (c *ContainerStatus) marshal(b []byte) []byte {
	b = appendString(appendInt(appendInt(appendString(b, 1, c.Name), 2, boolInt(c.Ready)), 3, int64(c.RestartCount)), 4, c.Image)
	return appendInt(appendString(appendString(b, 5, c.ImageID), 6, c.ContainerID), 7, c.StartedAt)
}

func (s *PodStatus) size() int {
	n := sizeString(1, s.Phase) + sizeString(3, s.HostIP) + sizeString(4, s.PodIP) + sizeInt(5, s.StartTime) + sizeString(7, s.QOSClass)
	for _, c := range s.Conditions {
		n += sizeMessage(2, sizeString(1, c.Type)+sizeString(2, c.Status)+sizeInt(3, c.LastTransitionTime))
	}
	for i := range s.ContainerStatuses {
		n += sizeMessage(6, s.ContainerStatuses[i].size())
	}
	return n
}

func (s *PodStatus) marshal(b []byte) []byte {
	b = appendString(b, 1, s.Phase)
	for _, c := range s.Conditions {
		b = appendHeader(b, 2, sizeString(1, c.Type)+sizeString(2, c.Status)+sizeInt(3, c.LastTransitionTime))
		b = appendInt(appendString(appendString(b, 1, c.Type), 2, c.Status), 3, c.LastTransitionTime)
	}
	b = appendInt(appendString(appendString(b, 3, s.HostIP), 4, s.PodIP), 5, s.StartTime)
	for i := range s.ContainerStatuses {
		b = s.ContainerStatuses[i].marshal(appendHeader(b, 6, s.ContainerStatuses[i].size()))
	}
	return appendString(b, 7, s.QOSClass)
}

func (p *Pod) size() int {
	return sizeMessage(1, p.Metadata.size()) + sizeMessage(2, p.Spec.size()) + sizeMessage(3, p.Status.size())
}

// marshalProto sizes the pod, then appends it into one buffer of that size, as generated Marshal() does.
func (p *Pod) marshalProto() []byte {
	b := make([]byte, 0, p.size())
	b = p.Metadata.marshal(appendHeader(b, 1, p.Metadata.size()))
	b = p.Spec.marshal(appendHeader(b, 2, p.Spec.size()))
	return p.Status.marshal(appendHeader(b, 3, p.Status.size()))
}

// --- protobuf decoding: a field walk that materialises every string, as generated Unmarshal() does ----

var errTruncated = errors.New("truncated protobuf")

func readVarint(b []byte, i int) (uint64, int, error) {
	var v uint64
	for shift := uint(0); shift < 64; shift += 7 {
		if i >= len(b) {
			return 0, 0, errTruncated
		}
		c := b[i]
		i++
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return v, i, nil
		}
	}
	return 0, 0, errTruncated
}

// walk decodes a message: every length-delimited field is copied out as a string (the allocation
// generated code makes for a string field), except the fields in nested, which are walked as messages
// one level down. Messages deeper than that are copied out whole, so this is a lower bound on the
// work of generated Unmarshal(), which decodes them field by field.
func walk(b []byte, nested map[int]bool, out []string) ([]string, error) {
	for i := 0; i < len(b); {
		key, j, err := readVarint(b, i)
		if err != nil {
			return out, err
		}
		field, wire := int(key>>3), int(key&7)
		switch wire {
		case 0:
			if _, j, err = readVarint(b, j); err != nil {
				return out, err
			}
		case 2:
			n, k, err := readVarint(b, j)
			if err != nil || k+int(n) > len(b) {
				return out, errTruncated
			}
			if nested[field] {
				if out, err = walk(b[k:k+int(n)], nestedAll, out); err != nil {
					return out, err
				}
			} else {
				out = append(out, string(b[k:k+int(n)]))
			}
			j = k + int(n)
		default:
			return out, fmt.Errorf("wire type %d", wire)
		}
		i = j
	}
	return out, nil
}

// nestedAll is the nesting below the pod's three parts: none (see walk).
var nestedAll = map[int]bool{}

func decodePod(b []byte) ([]string, error) {
	return walk(b, map[int]bool{1: true, 2: true, 3: true}, make([]string, 0, 64))
}

func main() {
	reps := flag.Int("reps", 5, "benchmark repetitions per operation")
	envs := flag.Int("env", 8, "environment variables in the pod's container (its size)")
	benchtime := flag.String("benchtime", "1s", "duration of each repetition (testing's -test.benchtime)")
	testing.Init()
	flag.Parse()
	if err := flag.Set("test.benchtime", *benchtime); err != nil {
		fmt.Fprintln(os.Stderr, "cnsim: error", err)
		os.Exit(2)
	}
	pod := makePod(*envs)
	asJSON, err := json.Marshal(&pod)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cnsim: error", err)
		os.Exit(1)
	}
	asProto := pod.marshalProto()
	if len(asProto) != pod.size() {
		fmt.Fprintln(os.Stderr, "cnsim: error: protobuf size mismatch", len(asProto), pod.size())
		os.Exit(1)
	}
	if _, err := decodePod(asProto); err != nil {
		fmt.Fprintln(os.Stderr, "cnsim: error: protobuf decode", err)
		os.Exit(1)
	}
	fmt.Println("format,operation,object_bytes,rep,iterations,ns_per_op,bytes_per_op,allocs_per_op,gomaxprocs")
	procs := runtime.GOMAXPROCS(0)
	ops := []struct {
		format, name string
		size         int
		fn           func(b *testing.B)
	}{
		{"json", "marshal", len(asJSON), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := json.Marshal(&pod); err != nil {
					b.Fatal(err)
				}
			}
		}},
		{"json", "unmarshal", len(asJSON), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				var p Pod
				if err := json.Unmarshal(asJSON, &p); err != nil {
					b.Fatal(err)
				}
			}
		}},
		{"protobuf", "marshal", len(asProto), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				_ = pod.marshalProto()
			}
		}},
		{"protobuf", "unmarshal", len(asProto), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := decodePod(asProto); err != nil {
					b.Fatal(err)
				}
			}
		}},
	}
	for _, op := range ops {
		for rep := 0; rep < *reps; rep++ {
			r := testing.Benchmark(op.fn)
			fmt.Printf("%s,%s,%d,%d,%d,%.1f,%d,%d,%d\n", op.format, op.name, op.size, rep, r.N,
				float64(r.T.Nanoseconds())/float64(r.N), r.AllocedBytesPerOp(), r.AllocsPerOp(), procs)
		}
	}
}
