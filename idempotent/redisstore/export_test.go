package redisstore

// Script digests, so that the black-box tests' fault proxy can tell the protocol's phases apart on the wire.
var (
	ClaimSHA    = claimScript.Hash()
	CompleteSHA = completeScript.Hash()
	ReleaseSHA  = releaseScript.Hash()
)
