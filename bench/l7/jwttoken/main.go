// Command jwttoken writes the keys and tokens of bench/l7/jwt.sh: an RSA
// 2048 and a P-256 key pair, their public keys as PEM files in -dir, and
// one RS256 and one ES256 token (iss "bench", aud "bench", valid for
// -ttl) as rs.token and es.token. Benchmark material only: the private
// keys are thrown away.
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"flag"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

func main() {
	dir := flag.String("dir", ".", "output folder")
	ttl := flag.Duration("ttl", time.Hour, "token lifetime")
	flag.Parse()
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		log.Fatal(err)
	}
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	for _, k := range []struct {
		name string
		alg  jose.SignatureAlgorithm
		priv any
		pub  any
	}{{"rs", jose.RS256, rk, &rk.PublicKey}, {"es", jose.ES256, ek, &ek.PublicKey}} {
		der, err := x509.MarshalPKIXPublicKey(k.pub)
		if err != nil {
			log.Fatal(err)
		}
		write(filepath.Join(*dir, k.name+".pem"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
		sig, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: k.priv}, (&jose.SignerOptions{}).WithType("JWT"))
		if err != nil {
			log.Fatal(err)
		}
		now := time.Now()
		tok, err := jwt.Signed(sig).Claims(jwt.Claims{
			Issuer: "bench", Audience: jwt.Audience{"bench"}, Subject: "bench-user",
			IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(*ttl)),
		}).Serialize()
		if err != nil {
			log.Fatal(err)
		}
		write(filepath.Join(*dir, k.name+".token"), []byte(tok))
	}
}

func write(path string, b []byte) {
	if err := os.WriteFile(path, b, 0o644); err != nil {
		log.Fatal(err)
	}
}
