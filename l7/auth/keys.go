package auth

import (
	"slices"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/portcullis-lb/portcullis/internal/config"
)

// key is one verification key and the algorithms it may verify. The
// algorithms come from the key and its configuration (config.VerifyKey),
// never from a token.
type key struct {
	kid  string
	algs []jose.SignatureAlgorithm
	pub  any
}

func (k *key) allows(alg jose.SignatureAlgorithm) bool { return slices.Contains(k.algs, alg) }

// keySet is an immutable set of keys, indexed by kid.
type keySet struct {
	byKID map[string][]*key
	all   []*key
}

// newKeySet keeps the keys whose algorithms are allowed (allowed empty:
// all).
func newKeySet(vks []config.VerifyKey, allowed []jose.SignatureAlgorithm) *keySet {
	ks := &keySet{byKID: map[string][]*key{}}
	for _, vk := range vks {
		k := &key{kid: vk.KID, pub: vk.Key}
		for _, a := range vk.Algs {
			alg := jose.SignatureAlgorithm(a)
			if len(allowed) == 0 || slices.Contains(allowed, alg) {
				k.algs = append(k.algs, alg)
			}
		}
		if len(k.algs) == 0 {
			continue
		}
		ks.all = append(ks.all, k)
		ks.byKID[k.kid] = append(ks.byKID[k.kid], k)
	}
	return ks
}

// candidates are the keys a token with this kid may have been signed with:
// those with the kid, or every key when the token names none.
func (ks *keySet) candidates(kid string) []*key {
	if ks == nil {
		return nil
	}
	if kid == "" {
		return ks.all
	}
	return ks.byKID[kid]
}

// unnamed are the keys configured without a kid: they are tried for a token
// whose kid no key has.
func (ks *keySet) unnamed() []*key {
	if ks == nil {
		return nil
	}
	return ks.byKID[""]
}
