package idempotent

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"unicode"
	"unicode/utf8"
)

// This file is an RFC 8785 (JSON Canonicalization Scheme) canonicaliser written for fingerprints: one pass over
// the input writes the canonical form of every value in document order, and only objects whose members did not
// arrive sorted are reordered afterwards, by one copy. Its output is byte for byte what github.com/gowebpki/jcs
// (the canonicaliser of earlier releases, now a test oracle) produced for every document both accept, so stored
// fingerprints keep matching.
//
// What it refuses, and why:
//   - anything encoding/json.Valid refuses, including nesting deeper than maxDepth (a hostile body of a million
//     '[' fails after 10,001 bytes instead of exhausting the stack);
//   - duplicate member names (RFC 8785 §3.1, I-JSON §2.3), compared as UTF-16 code units like the sort;
//   - a \u escape of an unpaired surrogate (I-JSON §2.1); jcs turned "\ud800\u0041" into U+FFFD and swallowed the
//     second escape, so two different payloads shared a fingerprint;
//   - numbers outside the range of an IEEE 754 double (I-JSON §2.2), such as 1e400.
//
// Bytes that are not valid UTF-8 inside strings are kept as they are, as jcs kept them: I-JSON forbids them, but
// refusing them now would change the fingerprint of every such body recorded before. For sorting, each such byte
// counts as U+FFFD, again like jcs. Whitespace around a top-level scalar (" 1 ") is insignificant, as RFC 8259
// says; jcs refused it.
//
// The same parser writes the exact form that version 2 fingerprints hash (canonicalizer.exact): strings and member
// order as above, but every number literal kept as written, since RFC 8785's doubles merge numbers that a typed
// field reads differently (1 and 1.0, 9007199254740993 and 9007199254740992), and objects whose member names are
// equal under encoding/json's case folding refused (errFold), since their meaning depends on the order RFC 8785
// sorts away. See docs/DESIGN.md, "Fingerprint version 2".

// maxDepth bounds the nesting of arrays and objects, as encoding/json does (10,000).
const maxDepth = 10000

var (
	errSyntax    = errors.New("invalid JSON")
	errDepth     = fmt.Errorf("nesting deeper than %d", maxDepth)
	errDuplicate = errors.New("duplicate member name")
	errSurrogate = errors.New("unpaired surrogate escape")
	errRange     = errors.New("number out of the range of a double")
	errFold      = errors.New("member names equal under case folding")
)

// ref locates a member name's decoded bytes in the arena.
type ref struct{ off, n int }

// text is what a document can be held in. Fingerprint reads a string body where it has one, rather than copy it.
type text interface{ ~string | ~[]byte }

// member is an object member being canonicalised: its decoded name and where "name":value sits in the output.
type member struct {
	// prefix is the name's first 8 bytes, big-endian and zero-padded: where two prefixes differ and are ASCII,
	// they order the names without looking further (see compareMembers).
	prefix     uint64
	name       ref
	start, end int
}

// frame is an open array or object.
type frame struct {
	object bool
	// sorted: the members so far arrived in canonical order (objects only).
	sorted bool
	// start is the output position of '{'; members is where this object's entries begin in canonicalizer.members.
	start, members int
}

// span is a range of the output.
type span struct{ start, end int }

// reorder is an object whose members must be written in another order than they were parsed in.
type reorder struct {
	start, end int // the object in the output, braces included
	spans      int // its members, sorted, at canonicalizer.spans[spans:spans+n]
	n          int
}

// canonicalizer holds the buffers of one canonicalisation; they are pooled so that a fingerprint allocates
// almost nothing.
type canonicalizer struct {
	// exact selects the form of version 2 fingerprints: numbers as written, case-folded duplicate names refused.
	exact bool
	// buf holds a fingerprint's input; the other fields are appendCanonical's.
	buf      []byte
	out      []byte
	stack    []frame
	members  []member
	arena    []byte
	spans    []span
	reorders []reorder
	tmp      []byte
	folds    []uint64
	errOff   int
}

var canonPool = sync.Pool{New: func() any { return new(canonicalizer) }}

// maxPooled is the largest buffer kept for reuse, so that one huge body does not pin its memory.
const maxPooled = 64 << 10

func getCanonicalizer() *canonicalizer { return canonPool.Get().(*canonicalizer) }

func (c *canonicalizer) release() {
	if cap(c.buf) > maxPooled {
		c.buf = nil
	}
	if cap(c.tmp) > maxPooled {
		c.tmp = nil
	}
	if cap(c.arena) > maxPooled {
		c.arena = nil
	}
	if cap(c.members) > maxPooled/32 {
		c.members = nil
	}
	if cap(c.stack) > maxPooled/32 {
		c.stack = nil
	}
	if cap(c.spans) > maxPooled/16 {
		c.spans = nil
	}
	if cap(c.reorders) > maxPooled/32 {
		c.reorders = nil
	}
	if cap(c.folds) > maxPooled/8 {
		c.folds = nil
	}
	canonPool.Put(c)
}

// appendCanonical appends the canonical form of src to dst, using c's buffers: the exact form of version 2
// fingerprints when exact is set, else RFC 8785's. On error it returns dst unchanged.
func appendCanonical[S text](c *canonicalizer, dst []byte, src S, exact bool) ([]byte, error) {
	base := len(dst)
	c.exact = exact
	c.out = dst
	c.stack, c.members, c.arena = c.stack[:0], c.members[:0], c.arena[:0]
	c.spans, c.reorders = c.spans[:0], c.reorders[:0]
	p := parser[S]{c, src}
	err := p.parse()
	dst, c.out = c.out, nil
	if err != nil {
		return dst[:base], err
	}
	if len(c.reorders) > 0 {
		// Write the document again with the reordered objects' members in order, then copy it back: reordering
		// keeps the length.
		slices.SortFunc(c.reorders, func(a, b reorder) int { return a.start - b.start })
		c.tmp = c.emit(c.tmp[:0], dst, base, len(dst), 0, len(c.reorders))
		copy(dst[base:], c.tmp)
	}
	return dst, nil
}

// emit appends out[start:end] to dst, writing each reordered object in it with its members in order. The
// reordered objects in out[start:end], nested ones included, are among c.reorders[lo:hi].
func (c *canonicalizer) emit(dst, out []byte, start, end, lo, hi int) []byte {
	pos := start
	for i := c.firstReorder(lo, hi, start); i < hi && c.reorders[i].start < end; {
		r := c.reorders[i]
		// The objects nested in r follow it, up to the first that starts after it.
		next := c.firstReorder(i+1, hi, r.end)
		dst = append(dst, out[pos:r.start]...)
		dst = append(dst, '{')
		for k, s := range c.spans[r.spans : r.spans+r.n] {
			if k > 0 {
				dst = append(dst, ',')
			}
			if next == i+1 {
				dst = append(dst, out[s.start:s.end]...)
			} else {
				dst = c.emit(dst, out, s.start, s.end, i+1, next)
			}
		}
		dst = append(dst, '}')
		pos, i = r.end, next
	}
	return append(dst, out[pos:end]...)
}

// firstReorder returns the index of the first of c.reorders[lo:hi] that starts at or after pos, or hi.
func (c *canonicalizer) firstReorder(lo, hi, pos int) int {
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if c.reorders[mid].start < pos {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

func (c *canonicalizer) fail(err error, off int) error {
	c.errOff = off
	return err
}

// parser reads one document held in an S into its canonicalizer.
type parser[S text] struct {
	*canonicalizer
	src S
}

func skipSpace[S text](src S, i int) int {
	for i < len(src) {
		switch src[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// parse canonicalises c.src into c.out. It keeps its own stack, so nesting costs no Go stack. It alternates
// between two steps: value reads what starts where a value is expected, next what follows a value inside an
// array or object; either says whether a value is expected after it. The document ends with its top-level value.
func (c *parser[S]) parse() error {
	i, wantValue := 0, true
	var err error
	for {
		switch {
		case wantValue:
			i, wantValue, err = c.value(i)
		case len(c.stack) == 0:
			return c.end(i)
		default:
			i, wantValue, err = c.next(i)
		}
		if err != nil {
			return err
		}
	}
}

// value reads the value that starts at i, after spaces. A scalar or an empty array or object ends there: value
// returns the position after it and false. An array or object with content stays open on the stack: value
// returns the position of its first value (after the first member name of an object) and true.
func (c *parser[S]) value(i int) (int, bool, error) {
	src := c.src
	i = skipSpace(src, i)
	if i >= len(src) {
		return i, false, c.fail(errSyntax, i)
	}
	var err error
	switch src[i] {
	case '{', '[':
		return c.open(i)
	case '"':
		i, _, err = c.str(i, false)
	case 't':
		i, err = c.literal(i, "true")
	case 'f':
		i, err = c.literal(i, "false")
	case 'n':
		i, err = c.literal(i, "null")
	default:
		i, err = c.number(i)
	}
	return i, false, err
}

// open starts the array or object whose bracket is at i; its results are value's.
func (c *parser[S]) open(i int) (int, bool, error) {
	src := c.src
	b := src[i]
	if len(c.stack) >= maxDepth {
		return i, false, c.fail(errDepth, i)
	}
	c.stack = append(c.stack, frame{object: b == '{', sorted: true, start: len(c.out), members: len(c.members)})
	c.out = append(c.out, b)
	i = skipSpace(src, i+1)
	if i < len(src) && src[i] == b+2 { // '{'+2 is '}', '['+2 is ']'
		c.out = append(c.out, b+2)
		c.stack = c.stack[:len(c.stack)-1]
		return i + 1, false, nil
	}
	if b == '{' {
		i, err := c.member(i)
		return i, true, err
	}
	return i, true, nil
}

// next reads what follows a value inside the innermost open array or object, after spaces: a ',' and, in an
// object, the next member name (next returns true: a value follows), or the bracket that closes the array or
// object, which is then a value that ended (false).
func (c *parser[S]) next(i int) (int, bool, error) {
	src := c.src
	i = skipSpace(src, i)
	if i >= len(src) {
		return i, false, c.fail(errSyntax, i)
	}
	top := &c.stack[len(c.stack)-1]
	switch src[i] {
	case ',':
		if !top.object {
			c.out = append(c.out, ',')
			return i + 1, true, nil
		}
		c.members[len(c.members)-1].end = len(c.out)
		c.out = append(c.out, ',')
		i, err := c.member(i + 1)
		return i, true, err
	case '}':
		if !top.object {
			return i, false, c.fail(errSyntax, i)
		}
		c.members[len(c.members)-1].end = len(c.out)
		c.out = append(c.out, '}')
		if err := c.closeObject(top); err != nil {
			return i, false, c.fail(err, i)
		}
	case ']':
		if top.object {
			return i, false, c.fail(errSyntax, i)
		}
		c.out = append(c.out, ']')
	default:
		return i, false, c.fail(errSyntax, i)
	}
	c.stack = c.stack[:len(c.stack)-1]
	return i + 1, false, nil
}

// end checks that only spaces follow the top-level value, which ended at i.
func (c *parser[S]) end(i int) error {
	if i = skipSpace(c.src, i); i != len(c.src) {
		return c.fail(errSyntax, i)
	}
	return nil
}

// member parses a member name and its colon at i (after '{' or ','), writes them and opens the member.
func (c *parser[S]) member(i int) (int, error) {
	src := c.src
	i = skipSpace(src, i)
	if i >= len(src) || src[i] != '"' {
		return 0, c.fail(errSyntax, i)
	}
	start := len(c.out)
	i, name, err := c.str(i, true)
	if err != nil {
		return 0, err
	}
	i = skipSpace(src, i)
	if i >= len(src) || src[i] != ':' {
		return 0, c.fail(errSyntax, i)
	}
	c.out = append(c.out, ':')
	m := member{prefix: c.prefix(name), name: name, start: start}
	top := &c.stack[len(c.stack)-1]
	if top.sorted && len(c.members) > top.members {
		switch d := c.compareMembers(&c.members[len(c.members)-1], &m); {
		case d == 0:
			return 0, c.fail(errDuplicate, start)
		case d > 0:
			top.sorted = false
		}
	}
	c.members = append(c.members, m)
	return i + 1, nil
}

// closeObject finishes the object of frame f: if its members did not arrive in order, it sorts them, refuses
// duplicates and records the object for reordering.
func (c *canonicalizer) closeObject(f *frame) error {
	ms := c.members[f.members:]
	if c.exact && c.foldDuplicate(ms) {
		return errFold
	}
	if !f.sorted {
		c.sortMembers(ms)
		for k := 1; k < len(ms); k++ {
			if c.compareMembers(&ms[k-1], &ms[k]) == 0 {
				return errDuplicate
			}
		}
		r := reorder{start: f.start, end: len(c.out), spans: len(c.spans), n: len(ms)}
		for _, m := range ms {
			c.spans = append(c.spans, span{m.start, m.end})
		}
		c.reorders = append(c.reorders, r)
	}
	c.members = c.members[:f.members]
	return nil
}

func (c *canonicalizer) name(r ref) []byte { return c.arena[r.off : r.off+r.n] }

// foldDuplicate reports whether two of ms have names equal under encoding/json's case folding. Small objects of
// ASCII names, nearly all of them, compare a key derived from each name's prefix pairwise and check the rare equal
// pair byte by byte. Others compare fold hashes (foldHash), where a collision of two different names counts as a duplicate
// too: that only makes the fingerprint hash the raw body, which is always sound.
func (c *canonicalizer) foldDuplicate(ms []member) bool {
	if len(ms) < 2 {
		return false
	}
	ascii := len(ms) <= 16
	for i := 0; ascii && i < len(ms); i++ {
		ascii = isASCII(c.name(ms[i].name))
	}
	if ascii {
		// Two ASCII names equal under folding differ only in bit 0x20 of some letters, so their prefixes with that
		// bit set in every byte are equal: a cheap key, which may also pair names that differ (a "[" and a "{").
		const caseBits = 0x2020202020202020
		for i := 1; i < len(ms); i++ {
			for j := range i {
				if ms[i].prefix|caseBits == ms[j].prefix|caseBits && ms[i].name.n == ms[j].name.n &&
					asciiFoldEqual(c.name(ms[i].name), c.name(ms[j].name)) {
					return true
				}
			}
		}
		return false
	}
	c.folds = c.folds[:0]
	for _, m := range ms {
		c.folds = append(c.folds, foldHash(c.name(m.name)))
	}
	slices.Sort(c.folds)
	for i := 1; i < len(c.folds); i++ {
		if c.folds[i] == c.folds[i-1] {
			return true
		}
	}
	return false
}

// isASCII reports whether b holds only ASCII bytes, eight at a time.
func isASCII(b []byte) bool {
	var acc uint64
	for ; len(b) >= 8; b = b[8:] {
		acc |= binary.LittleEndian.Uint64(b)
	}
	for _, x := range b {
		acc |= uint64(x)
	}
	return acc&asciiMask == 0
}

// asciiFoldEqual reports whether two ASCII names of one length are equal under encoding/json's folding, which for
// ASCII changes only the case of letters.
func asciiFoldEqual(a, b []byte) bool {
	for i := range a {
		x, y := a[i], b[i]
		if 'a' <= x && x <= 'z' {
			x -= 'a' - 'A'
		}
		if 'a' <= y && y <= 'z' {
			y -= 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// foldHash hashes a decoded member name (FNV-1a over its runes) after the folding encoding/json applies to match
// names to struct fields (Go 1.26, encoding/json/fold.go): ASCII letters to upper case, every other rune to the
// smallest rune of its unicode.SimpleFold orbit, bytes that are not UTF-8 to U+FFFD (as the decoder reads them).
// So "amount" and "AMOUNT" hash alike, and so do "kind" and "\u212aind" (a Kelvin sign for the "k").
func foldHash(name []byte) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(name); {
		r := rune(name[i])
		if r < utf8.RuneSelf {
			if 'a' <= r && r <= 'z' {
				r -= 'a' - 'A'
			}
			i++
		} else {
			var n int
			r, n = utf8.DecodeRune(name[i:])
			r = foldRune(r)
			i += n
		}
		h = (h ^ uint64(r)) * 1099511628211
	}
	return h
}

// foldRune returns the smallest rune of r's case-folding orbit, as encoding/json's foldRune does.
func foldRune(r rune) rune {
	for {
		r2 := unicode.SimpleFold(r)
		if r2 <= r {
			return r2
		}
		r = r2
	}
}

// sortMembers sorts ms by name. Objects are small, so an insertion sort does it with the fewest moves.
func (c *canonicalizer) sortMembers(ms []member) {
	if len(ms) > 16 {
		slices.SortFunc(ms, func(a, b member) int { return c.compareMembers(&a, &b) })
		return
	}
	for k := 1; k < len(ms); k++ {
		for j := k; j > 0 && c.compareMembers(&ms[j-1], &ms[j]) > 0; j-- {
			ms[j-1], ms[j] = ms[j], ms[j-1]
		}
	}
}

// asciiMask has the high bit of every byte of a word.
const asciiMask = 0x8080808080808080

// compareMembers orders members by their names' UTF-16 code units (RFC 8785 §3.2.3).
func (c *canonicalizer) compareMembers(a, b *member) int {
	// ASCII bytes compare as code units do, and a zero pad sorts before any byte a longer name has there.
	if a.prefix != b.prefix && (a.prefix|b.prefix)&asciiMask == 0 {
		if a.prefix < b.prefix {
			return -1
		}
		return 1
	}
	return compareUTF16(c.name(a.name), c.name(b.name))
}

// prefix returns the first 8 bytes of name, the last in the arena, as a big-endian number, zero-padded: read
// at once with eight zero bytes appended behind the name for the time of the read.
func (c *canonicalizer) prefix(name ref) uint64 {
	var zeros [8]byte
	c.arena = append(c.arena, zeros[:]...)
	p := binary.BigEndian.Uint64(c.arena[name.off:])
	c.arena = c.arena[:name.off+name.n]
	return p
}

// compareUTF16 compares two UTF-8 strings as sequences of UTF-16 code units, each invalid byte counting as
// U+FFFD. Byte order is code point order, which is UTF-16 order except that U+E000-U+FFFF sort after the
// supplementary planes in UTF-16; so bytes decide where they safely can and runes decide otherwise.
func compareUTF16(a, b []byte) int {
	n := min(len(a), len(b))
	i := 0
	for i < n && a[i] == b[i] {
		i++
	}
	switch {
	case i < n:
		// Two ASCII bytes start runes in both strings and end whatever precedes them identically.
		if a[i] < utf8.RuneSelf && b[i] < utf8.RuneSelf {
			return int(a[i]) - int(b[i])
		}
	case len(a) == len(b):
		return 0
	case len(a) < len(b) && b[n] < utf8.RuneSelf:
		return -1
	case len(b) < len(a) && a[n] < utf8.RuneSelf:
		return 1
	}
	return compareRunes(a, b)
}

func compareRunes(a, b []byte) int {
	for len(a) > 0 && len(b) > 0 {
		ra, na := utf8.DecodeRune(a)
		rb, nb := utf8.DecodeRune(b)
		if ra != rb {
			ua, ub := firstUnit(ra), firstUnit(rb)
			if ua != ub {
				return int(ua) - int(ub)
			}
			// Same high surrogate: the low surrogates follow the code points' order.
			return int(ra) - int(rb)
		}
		a, b = a[na:], b[nb:]
	}
	return len(a) - len(b)
}

// firstUnit is the first UTF-16 code unit of r.
func firstUnit(r rune) rune {
	if r >= 0x10000 {
		return 0xD800 + (r-0x10000)>>10
	}
	return r
}

func (c *parser[S]) literal(i int, lit string) (int, error) {
	if len(c.src)-i < len(lit) || string(c.src[i:i+len(lit)]) != lit {
		return 0, c.fail(errSyntax, i)
	}
	c.out = append(c.out, lit...)
	return i + len(lit), nil
}

// number writes the number at i in the ECMAScript Number-to-String form (RFC 8785 §3.2.2.3).
func (c *parser[S]) number(i int) (int, error) {
	src := c.src
	start := i
	if i < len(src) && src[i] == '-' {
		i++
	}
	digits := i
	switch {
	case i < len(src) && src[i] == '0':
		i++
	case i < len(src) && src[i] >= '1' && src[i] <= '9':
		for i < len(src) && src[i] >= '0' && src[i] <= '9' {
			i++
		}
	default:
		return 0, c.fail(errSyntax, i)
	}
	intPart := src[digits:i]
	var frac S
	if i < len(src) && src[i] == '.' {
		f := i + 1
		if i = skipDigits(src, f); i < 0 {
			return 0, c.fail(errSyntax, start)
		}
		frac = src[f:i]
	}
	exponent := false
	if i < len(src) && (src[i] == 'e' || src[i] == 'E') {
		exponent = true
		i++
		if i < len(src) && (src[i] == '+' || src[i] == '-') {
			i++
		}
		if i = skipDigits(src, i); i < 0 {
			return 0, c.fail(errSyntax, start)
		}
	}
	if c.exact {
		// The literal, which the grammar above has validated, is what a typed field or json.Number reads.
		c.out = append(c.out, src[start:i]...)
		return i, nil
	}
	if !exponent && c.plainNumber(src[start] == '-', intPart, frac) {
		return i, nil
	}
	tok := src[start:i]
	f, err := strconv.ParseFloat(string(tok), 64)
	if err != nil {
		return 0, c.fail(errRange, start)
	}
	c.out = appendNumber(c.out, f)
	return i, nil
}

// plainNumber writes a number without exponent whose canonical form can be read off its digits, and reports
// whether it could: a double holds any decimal of at most 15 significant digits exactly enough that no shorter
// spelling reaches it, so ECMAScript writes such a number as it is, less trailing fraction zeros and the sign of
// zero, as long as it is at least 1e-6 (below, it switches to exponent notation).
func (c *parser[S]) plainNumber(negative bool, intPart, frac S) bool {
	for len(frac) > 0 && frac[len(frac)-1] == '0' {
		frac = frac[:len(frac)-1]
	}
	significant := len(intPart) + len(frac)
	if intPart[0] == '0' {
		lead := 0
		for lead < len(frac) && frac[lead] == '0' {
			lead++
		}
		if lead > 5 && lead < len(frac) {
			return false
		}
		significant = len(frac) - lead
	}
	if significant > 15 {
		return false
	}
	if significant == 0 {
		c.out = append(c.out, '0')
		return true
	}
	if negative {
		c.out = append(c.out, '-')
	}
	c.out = append(c.out, intPart...)
	if len(frac) > 0 {
		c.out = append(c.out, '.')
		c.out = append(c.out, frac...)
	}
	return true
}

// skipDigits skips one or more digits at i, returning -1 when there is none.
func skipDigits[S text](src S, i int) int {
	start := i
	for i < len(src) && src[i] >= '0' && src[i] <= '9' {
		i++
	}
	if i == start {
		return -1
	}
	return i
}

// appendNumber appends f as ECMAScript's Number::toString writes it (ECMA-262 §6.1.6.1.20, required by RFC 8785
// §3.2.2.3): the shortest digits that round-trip, in fixed notation from 1e-6 up to 1e21 and in exponent notation
// outside, with no "+0"/"-0" distinction and no leading zero in the exponent. f must be finite.
func appendNumber(dst []byte, f float64) []byte {
	if f == 0 {
		return append(dst, '0')
	}
	if f < 0 {
		dst = append(dst, '-')
		f = -f
	}
	if f >= 1e-6 && f < 1e21 {
		return strconv.AppendFloat(dst, f, 'f', -1, 64)
	}
	dst = strconv.AppendFloat(dst, f, 'e', -1, 64)
	// Go writes at least two exponent digits ("1e-07"), ECMAScript as few as needed ("1e-7").
	if n := len(dst); dst[n-4] == 'e' && dst[n-2] == '0' {
		dst[n-2] = dst[n-1]
		dst = dst[:n-1]
	}
	return dst
}

// stringStop marks the bytes that end a run of string bytes copied as they are: '"', '\\' and the
// control characters, which JSON forbids unescaped.
var stringStop = func() (t [256]bool) {
	for b := 0; b < 0x20; b++ {
		t[b] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

// scanString returns the index of the first byte at or after i that ends a run of plain string bytes (see
// stringStop), or len(src). It tests eight bytes at a time: a word holds no such byte unless one of its bytes is
// below 0x20 or equals '"' or '\\', which the usual "has a byte less than n" bit trick detects exactly.
func scanString[S text](src S, i int) int {
	const ones = 0x0101010101010101
	for ; i+8 <= len(src); i += 8 {
		w := load64(src, i)
		q, b := w^(ones*'"'), w^(ones*'\\')
		if ((w-ones*0x20)&^w|(q-ones)&^q|(b-ones)&^b)&asciiMask != 0 {
			break
		}
	}
	for i < len(src) && !stringStop[src[i]] {
		i++
	}
	return i
}

// load64 reads the eight bytes at i as a little-endian word (the compiler makes one load of it).
func load64[S text](src S, i int) uint64 {
	_ = src[i+7]
	return uint64(src[i]) | uint64(src[i+1])<<8 | uint64(src[i+2])<<16 | uint64(src[i+3])<<24 |
		uint64(src[i+4])<<32 | uint64(src[i+5])<<40 | uint64(src[i+6])<<48 | uint64(src[i+7])<<56
}

// str writes the string at i (its opening quote) in canonical form and returns the index after it. For member
// names it also returns where the decoded name is.
func (c *parser[S]) str(i int, name bool) (int, ref, error) {
	src := c.src
	open := i
	i = scanString(src, i+1)
	r := ref{off: len(c.arena)}
	if i < len(src) && src[i] == '"' {
		// No escapes: the string is already canonical (nothing left in it needs escaping).
		c.out = append(c.out, src[open:i+1]...)
		if name {
			c.arena = append(c.arena, src[open+1:i]...)
			r.n = i - open - 1
		}
		return i + 1, r, nil
	}
	c.out = append(c.out, src[open:i]...)
	if name {
		c.arena = append(c.arena, src[open+1:i]...)
	}
	for {
		if i >= len(src) {
			return 0, ref{}, c.fail(errSyntax, i)
		}
		b := src[i]
		switch {
		case b == '"':
			c.out = append(c.out, '"')
			r.n = len(c.arena) - r.off
			return i + 1, r, nil
		case b < 0x20:
			return 0, ref{}, c.fail(errSyntax, i)
		case b == '\\':
			ch, next, err := c.escape(i)
			if err != nil {
				return 0, ref{}, err
			}
			c.out = appendEscaped(c.out, ch)
			if name {
				c.arena = utf8.AppendRune(c.arena, ch)
			}
			i = next
		default:
			run := i
			i = scanString(src, i)
			c.out = append(c.out, src[run:i]...)
			if name {
				c.arena = append(c.arena, src[run:i]...)
			}
		}
	}
}

// escape decodes the escape sequence at i (its backslash), a surrogate pair as one code point.
func (c *parser[S]) escape(i int) (rune, int, error) {
	src := c.src
	if i+1 >= len(src) {
		return 0, 0, c.fail(errSyntax, i)
	}
	switch src[i+1] {
	case '"', '\\', '/':
		return rune(src[i+1]), i + 2, nil
	case 'b':
		return '\b', i + 2, nil
	case 'f':
		return '\f', i + 2, nil
	case 'n':
		return '\n', i + 2, nil
	case 'r':
		return '\r', i + 2, nil
	case 't':
		return '\t', i + 2, nil
	case 'u':
	default:
		return 0, 0, c.fail(errSyntax, i)
	}
	r, ok := hex4(src, i+2)
	if !ok {
		return 0, 0, c.fail(errSyntax, i)
	}
	switch {
	case r < 0xD800 || r >= 0xE000:
		return r, i + 6, nil
	case r >= 0xDC00:
		return 0, 0, c.fail(errSurrogate, i)
	}
	if len(src)-i < 12 || src[i+6] != '\\' || src[i+7] != 'u' {
		return 0, 0, c.fail(errSurrogate, i)
	}
	lo, ok := hex4(src, i+8)
	if !ok {
		return 0, 0, c.fail(errSyntax, i+6)
	}
	if lo < 0xDC00 || lo >= 0xE000 {
		return 0, 0, c.fail(errSurrogate, i)
	}
	return 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00), i + 12, nil
}

// hex4 reads four hex digits at i.
func hex4[S text](src S, i int) (rune, bool) {
	if len(src)-i < 4 {
		return 0, false
	}
	var r rune
	for k := i; k < i+4; k++ {
		b := src[k]
		switch {
		case b >= '0' && b <= '9':
			b -= '0'
		case b >= 'a' && b <= 'f':
			b -= 'a' - 10
		case b >= 'A' && b <= 'F':
			b -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(b)
	}
	return r, true
}

// appendEscaped appends r as RFC 8785 §3.2.2.2 writes it inside a string: '"' and '\\' and the control
// characters escaped (the short forms where JSON has them, else \u00xx in lower case), everything else as UTF-8.
func appendEscaped(dst []byte, r rune) []byte {
	switch r {
	case '"', '\\':
		return append(dst, '\\', byte(r))
	case '\b':
		return append(dst, '\\', 'b')
	case '\f':
		return append(dst, '\\', 'f')
	case '\n':
		return append(dst, '\\', 'n')
	case '\r':
		return append(dst, '\\', 'r')
	case '\t':
		return append(dst, '\\', 't')
	}
	if r < 0x20 {
		const hexDigits = "0123456789abcdef"
		return append(dst, '\\', 'u', '0', '0', hexDigits[r>>4], hexDigits[r&0xF])
	}
	return utf8.AppendRune(dst, r)
}
