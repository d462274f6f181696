package main

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const sample = `package p

const limit = 10

func f(a, b int, s string) (int, bool) {
	if a < b && !done(s) {
		a++
	}
	s = s + "x"
	n := a + b
	return n, true
}

func done(string) bool { return false }
`

func mutantsOf(t *testing.T, src string) []*mutant {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "p.go", src, 0)
	require.NoError(t, err)
	return generate(fset, f, []byte(src), "/x/p.go", "p.go", nil)
}

func TestGenerate(t *testing.T) {
	ms := mutantsOf(t, sample)
	got := map[string]bool{}
	for _, m := range ms {
		got[m.Op+" | "+m.Orig+" -> "+m.Mut] = true
		assert.Equal(t, "p.go", m.File)
		assert.Len(t, m.ID, 10)
	}
	for _, want := range []string{
		"const | const limit = 10 -> const limit = 11",
		"boundary | if a < b && !done(s) { -> if a <= b && !done(s) {",
		"negate-cmp | if a < b && !done(s) { -> if a >= b && !done(s) {",
		"logical | if a < b && !done(s) { -> if a < b || !done(s) {",
		"remove-not | if a < b && !done(s) { -> if a < b && done(s) {",
		"negate-if | if a < b && !done(s) { -> if !(a < b && !done(s)) {",
		"incdec | a++ -> a--",
		"remove-stmt | a++ -> ",
		"remove-stmt | s = s + \"x\" -> ",
		"arith | n := a + b -> n := a - b",
		"const | return n, true -> return n, false",
		"const | func done(string) bool { return false } -> func done(string) bool { return true }",
	} {
		assert.True(t, got[want], "missing mutant %q", want)
	}
	for k := range got {
		assert.NotContains(t, k, "remove-stmt | n := a + b", "a definition is never removed: the mutant would not compile")
	}
}

func TestIDsStableAcrossLineMoves(t *testing.T) {
	before := mutantsOf(t, sample)
	after := mutantsOf(t, strings.Replace(sample, "const limit = 10\n", "const limit = 10\n\n// moved down\n", 1))
	require.Len(t, after, len(before))
	for i := range before {
		assert.Equal(t, before[i].ID, after[i].ID, "%s %s", before[i].Op, before[i].Orig)
		assert.NotEqual(t, before[i].Line == after[i].Line, before[i].Line > 3, "lines after the insertion moved")
	}
	ids := map[string]bool{}
	for _, m := range before {
		assert.False(t, ids[m.ID], "ids are unique: %s", m.ID)
		ids[m.ID] = true
	}
}

func TestReadEquivalent(t *testing.T) {
	p := filepath.Join(t.TempDir(), "eq.txt")
	require.NoError(t, os.WriteFile(p, []byte("# comment\n\nabc123  p.go:3  the limit is never reached\n"), 0o644))
	m, err := readEquivalent(p)
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"abc123": "the limit is never reached"}, m)

	require.NoError(t, os.WriteFile(p, []byte("abc123 p.go:3\n"), 0o644))
	_, err = readEquivalent(p)
	assert.ErrorContains(t, err, "reason", "a reason is required")
}

func TestSampled(t *testing.T) {
	for _, tc := range []struct {
		id   string
		n    uint64
		want bool
	}{
		{"00000000a3", 0, true}, {"00000000a3", 1, true},
		{"0000000000", 4, true}, {"0000000004", 4, true}, {"00000000a4", 4, true},
		{"0000000001", 4, false}, {"0000000003", 4, false}, {"00000000a3", 4, false},
		{"0000000005", 5, true}, {"0000000004", 5, false},
	} {
		assert.Equal(t, tc.want, sampled(tc.id, tc.n), "%s in 1/%d", tc.id, tc.n)
	}
}
