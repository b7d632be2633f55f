// Command certgen writes the certificates of the mTLS measurements into -dir: a
// self-signed CA (ca.pem) and two leaf certificates it signs, server.pem with
// server.key and client.pem with client.key, each for 127.0.0.1 and localhost,
// valid for a day. The keys are RSA of -rsa-bits bits (2048: the key an Istio
// sidecar creates for its workload certificate unless told otherwise, as
// "Managing In-Mesh Certificates" in Istio's docs says), signed with SHA-256.
//
// Standard library only.
package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "cnsim: error "+format+"\n", args...)
	os.Exit(2)
}

func write(path, kind string, der []byte) {
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		fail("%v", err)
	}
}

func main() {
	dir := flag.String("dir", "", "folder to write ca.pem, server.pem, server.key, client.pem, client.key into")
	bits := flag.Int("rsa-bits", 2048, "RSA key size")
	flag.Parse()
	if *dir == "" {
		fail("-dir is required")
	}
	now := time.Now()
	caKey, err := rsa.GenerateKey(rand.Reader, *bits)
	if err != nil {
		fail("%v", err)
	}
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "cnsim test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature, BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		fail("%v", err)
	}
	write(filepath.Join(*dir, "ca.pem"), "CERTIFICATE", caDER)
	for serial, name := range []string{"server", "client"} {
		key, err := rsa.GenerateKey(rand.Reader, *bits)
		if err != nil {
			fail("%v", err)
		}
		leaf := &x509.Certificate{
			SerialNumber: big.NewInt(int64(serial + 2)), Subject: pkix.Name{CommonName: "cnsim " + name},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
			DNSNames:    []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		}
		der, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
		if err != nil {
			fail("%v", err)
		}
		write(filepath.Join(*dir, name+".pem"), "CERTIFICATE", der)
		write(filepath.Join(*dir, name+".key"), "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key))
	}
}
