package redisstore

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// Script digests, so that the black-box tests' fault proxy can tell the protocol's phases apart on the wire.
var (
	ClaimSHA    = claimScript.Hash()
	CompleteSHA = completeScript.Hash()
	ReleaseSHA  = releaseScript.Hash()
)

// LoadScripts loads the store's scripts into the server's cache, so that a test counts no NOSCRIPT fallback.
func LoadScripts(ctx context.Context, c redis.Scripter) error {
	for _, s := range []*redis.Script{claimScript, completeScript, releaseScript} {
		if err := s.Load(ctx, c).Err(); err != nil {
			return err
		}
	}
	return nil
}
