package idempotent

// ExactJSON returns the form of a JSON document that version 2 fingerprints hash (see canonicalizer.exact), for
// the tests of package idempotent_test.
func ExactJSON(doc []byte) ([]byte, error) {
	c := getCanonicalizer()
	defer c.release()
	return appendCanonical(c, nil, doc, true)
}
