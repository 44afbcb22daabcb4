package config

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
)

// JWTAlgorithms are the signature algorithms a jwt route may use.
var JWTAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "HS256", "HS384", "HS512"}

// MinRSABits is the smallest RSA key accepted for JWT verification.
const MinRSABits = 2048

// VerifyKey is a parsed JWT verification key with the algorithms it may
// verify: always derived from the key and its configuration, never from a
// token.
type VerifyKey struct {
	KID  string
	Algs []string
	Key  any // *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey or []byte
}

// ParseJWTKey reads one configured key (files included).
func ParseJWTKey(k JWTKey) (VerifyKey, error) {
	var key any
	declared := k.Algorithm
	kid := k.KID
	switch {
	case k.JWK != "":
		var jwk jose.JSONWebKey
		if err := json.Unmarshal([]byte(k.JWK), &jwk); err != nil {
			return VerifyKey{}, fmt.Errorf("jwk: %v", err)
		}
		_, sym := jwk.Key.([]byte)
		if !sym && !jwk.Valid() {
			return VerifyKey{}, errors.New("jwk: not a valid key")
		}
		if !sym && !jwk.IsPublic() {
			return VerifyKey{}, errors.New("jwk: a private key: configure only its public part")
		}
		if declared != "" && jwk.Algorithm != "" && declared != jwk.Algorithm {
			return VerifyKey{}, fmt.Errorf("algorithm %s differs from the JWK's alg %s", declared, jwk.Algorithm)
		}
		if declared == "" {
			declared = jwk.Algorithm
		}
		if kid == "" {
			kid = jwk.KeyID
		}
		key = jwk.Key
	case k.PEM != "" || k.PEMFile != "":
		b := []byte(k.PEM)
		if k.PEMFile != "" {
			var err error
			if b, err = os.ReadFile(k.PEMFile); err != nil {
				return VerifyKey{}, err
			}
		}
		var err error
		if key, err = parsePublicPEM(b); err != nil {
			return VerifyKey{}, err
		}
	case k.Secret != "" || k.SecretFile != "":
		s := []byte(k.Secret)
		if k.SecretFile != "" {
			b, err := os.ReadFile(k.SecretFile)
			if err != nil {
				return VerifyKey{}, err
			}
			s = []byte(strings.TrimRight(string(b), "\r\n"))
		}
		key = s
	default:
		return VerifyKey{}, errors.New("set one of jwk, pem, pem_file, secret and secret_file")
	}
	algs, err := keyAlgorithms(key, declared, true, nil)
	if err != nil {
		return VerifyKey{}, err
	}
	return VerifyKey{KID: kid, Algs: algs, Key: key}, nil
}

func parsePublicPEM(b []byte) (any, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("pem: no PEM block found")
	}
	switch blk.Type {
	case "PUBLIC KEY":
		return x509.ParsePKIXPublicKey(blk.Bytes)
	case "RSA PUBLIC KEY":
		return x509.ParsePKCS1PublicKey(blk.Bytes)
	case "CERTIFICATE":
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, err
		}
		return c.PublicKey, nil
	}
	return nil, fmt.Errorf("pem: a %q block; want a PUBLIC KEY or a CERTIFICATE (never a private key)", blk.Type)
}

// ParseJWKS reads a JSON Web Key Set. Keys that cannot be used (private,
// unsupported, encryption keys, symmetric keys when symmetric is false, an
// RSA key without alg when fallback is empty) are skipped and reported in
// skipped; the set is an error only when it is not a JWKS at all.
// fallback are the algorithms for keys that name none (an RSA key's).
func ParseJWKS(b []byte, symmetric bool, fallback []string) (keys []VerifyKey, skipped []string, err error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, nil, fmt.Errorf("not a JWKS: %v", err)
	}
	if set.Keys == nil {
		return nil, nil, errors.New("not a JWKS: no \"keys\" list")
	}
	for i, raw := range set.Keys {
		var jwk jose.JSONWebKey
		if err := json.Unmarshal(raw, &jwk); err != nil {
			skipped = append(skipped, fmt.Sprintf("key %d: %v", i, err))
			continue
		}
		_, sym := jwk.Key.([]byte)
		switch {
		case jwk.Use != "" && jwk.Use != "sig":
			skipped = append(skipped, fmt.Sprintf("key %d (%s): use %q", i, jwk.KeyID, jwk.Use))
			continue
		case sym && !symmetric:
			skipped = append(skipped, fmt.Sprintf("key %d (%s): a symmetric key in a remote set", i, jwk.KeyID))
			continue
		case !sym && !jwk.IsPublic():
			skipped = append(skipped, fmt.Sprintf("key %d (%s): private key material", i, jwk.KeyID))
			continue
		}
		algs, err := keyAlgorithms(jwk.Key, jwk.Algorithm, false, fallback)
		if err != nil {
			skipped = append(skipped, fmt.Sprintf("key %d (%s): %v", i, jwk.KeyID, err))
			continue
		}
		keys = append(keys, VerifyKey{KID: jwk.KeyID, Algs: algs, Key: jwk.Key})
	}
	return keys, skipped, nil
}

// JWKSFallbackAlgorithms are the algorithms of the RSA keys of a key set
// that name none: the RSA algorithms of jwt.algorithms, else RS256 (RFC
// 7518 §3.1's recommended one, what identity providers that leave alg out
// sign with).
func JWKSFallbackAlgorithms(algorithms []string) []string {
	var out []string
	for _, a := range algorithms {
		if strings.HasPrefix(a, "RS") || strings.HasPrefix(a, "PS") {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		out = []string{"RS256"}
	}
	return out
}

// keyAlgorithms is the rule that pins algorithms to keys: an EC key's curve
// and an Ed25519 key decide theirs; RSA and HMAC keys need a declared one
// (strict) or take fallback's (sets fetched from an identity provider,
// some of which leave out alg); a declared algorithm must fit the key.
func keyAlgorithms(key any, declared string, strict bool, fallback []string) ([]string, error) {
	var fits []string
	switch k := key.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < MinRSABits {
			return nil, fmt.Errorf("RSA key of %d bits; at least %d", k.N.BitLen(), MinRSABits)
		}
		fits = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			fits = []string{"ES256"}
		case elliptic.P384():
			fits = []string{"ES384"}
		case elliptic.P521():
			fits = []string{"ES512"}
		default:
			return nil, errors.New("unsupported EC curve")
		}
	case ed25519.PublicKey:
		fits = []string{"EdDSA"}
	case []byte:
		fits = []string{"HS256", "HS384", "HS512"}
	default:
		return nil, fmt.Errorf("unsupported key type %T", key)
	}
	if declared != "" {
		if !slices.Contains(fits, declared) {
			return nil, fmt.Errorf("algorithm %q does not fit this key (it fits %s)", declared, strings.Join(fits, ", "))
		}
		if b, ok := key.([]byte); ok {
			if need := map[string]int{"HS256": 32, "HS384": 48, "HS512": 64}[declared]; len(b) < need {
				return nil, fmt.Errorf("an %s secret needs at least %d bytes, got %d", declared, need, len(b))
			}
		}
		return []string{declared}, nil
	}
	if len(fits) == 1 {
		return fits, nil
	}
	if !strict {
		var algs []string
		for _, a := range fallback {
			if slices.Contains(fits, a) {
				algs = append(algs, a)
			}
		}
		if len(algs) > 0 {
			if _, sym := key.([]byte); !sym {
				return algs, nil
			}
		}
	}
	return nil, fmt.Errorf("the key does not say its algorithm: set algorithm (one of %s)", strings.Join(fits, ", "))
}
