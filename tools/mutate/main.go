// Command mutate measures how many small behaviour changes the tests of a package notice (mutation testing).
//
// For each non-test Go file of the packages named on the command line it makes mutants, one change at a time
// (comparison boundaries and negations, && <-> ||, + <-> - and * <-> /, ++ <-> --, ! removed, if conditions
// negated, if and else bodies emptied, statements removed, integer constants 0 <-> 1 / n -> n+1, true <-> false),
// type-checks each in memory (a mutant that does not compile is "not viable" and not counted), and runs the
// package's test binary built with `go test -c -overlay`: the source tree is never written, so runs in parallel
// with other work are safe. Mutants on lines that no test executes survive without a run (coverage from a
// baseline run). A mutant whose tests fail, panic or time out is killed; the timeout is derived from the baseline.
//
//	go run ./tools/mutate [-files regexp] [-run regexp] [-tests pkgs] [-j 1] \
//	    [-equivalent tools/mutate/equivalent.txt] [-out report.txt] [-min 90] ./idempotent/sqs ./idempotent/dynamostore
//
// The report (stdout, or -out) is stable and diffable: per package a summary line, then every survivor as
// "SURVIVED file:line:col operator id=ID" with its original and mutated line. A survivor that cannot be killed
// (the change does not alter behaviour) goes into the -equivalent file with its id and a reason; it is then
// reported as EQUIVALENT and left out of the score. Score = killed / (killed + survived).
//
// -tests names further packages whose tests judge the mutants too: the front ends of a shared core, say, whose
// contract tests live beside them (-tests ./idempotent/apigw for ./idempotent/httpidem). Their test binaries are
// built with the same overlay and with coverage of the mutated package, and a mutant runs only the tests, in any of
// the binaries, that execute its line; it is killed when any of them fails.
//
// Packages whose tests use internal/ddblocal/ddbtest share one DynamoDB Local that this command starts (unless
// $IDEMKIT_TEST_DYNAMODB_ENDPOINT is set), so a mutant run does not pay for a JVM start.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/idemkit/idemkit/internal/ddblocal"
)

const ddbtestPkg = "github.com/idemkit/idemkit/internal/ddblocal/ddbtest"

type config struct {
	files      *regexp.Regexp
	ids        map[string]bool // when not empty, only these mutants
	sample     uint64          // when > 1, only the mutants whose id is 0 modulo sample
	run        string
	jobs       int
	factor     float64
	minTimeout time.Duration
	equivalent map[string]string // id -> reason
	min        float64
	verbose    bool
	// tests are further packages whose tests judge the mutants (-tests).
	tests []pkg
}

func main() {
	var (
		files   = flag.String("files", "", "mutate only files whose module-relative path matches this regexp")
		ids     = flag.String("ids", "", "comma-separated mutant ids: run only these (e.g. to check that new tests kill the survivors of a report)")
		run     = flag.String("run", "", "passed to the test binary as -test.run (e.g. to keep an integration suite affordable)")
		jobs    = flag.Int("j", 1, "mutants run at once (each one compiles and runs a test binary)")
		factor  = flag.Float64("timeout-factor", 3, "a mutant's test run may take this many times the baseline run")
		minTO   = flag.Duration("min-timeout", 30*time.Second, "lower bound of a mutant's test timeout")
		eqFile  = flag.String("equivalent", "", "file of accepted equivalent mutants: one `ID  file:line  reason` per line")
		out     = flag.String("out", "", "write the report here as well as to stdout")
		minPct  = flag.Float64("min", 0, "exit 1 when a package scores below this percentage")
		verbose = flag.Bool("v", false, "print each mutant's result as it finishes")
		sample  = flag.Uint64("sample", 0, "run only about one mutant in `n`, chosen by id (stable across runs): an estimate of the score where a full run takes too long")
		tests   = flag.String("tests", "", "comma-separated packages whose tests also judge the mutants (they import the mutated package)")
	)
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: mutate [flags] package...")
		os.Exit(2)
	}
	cfg := config{run: *run, jobs: max(1, *jobs), factor: *factor, minTimeout: *minTO, min: *minPct, verbose: *verbose, sample: *sample}
	if *files != "" {
		cfg.files = regexp.MustCompile(*files)
	}
	if *ids != "" {
		cfg.ids = map[string]bool{}
		for _, id := range strings.Split(*ids, ",") {
			cfg.ids[strings.TrimSpace(id)] = true
		}
	}
	var err error
	for _, pattern := range strings.Split(*tests, ",") {
		if pattern = strings.TrimSpace(pattern); pattern == "" {
			continue
		}
		ps, err := listPackages(pattern)
		if err != nil {
			fatal(err)
		}
		cfg.tests = append(cfg.tests, ps...)
	}
	if cfg.equivalent, err = readEquivalent(*eqFile); err != nil {
		fatal(err)
	}
	var report bytes.Buffer
	w := io.MultiWriter(os.Stdout, &report)
	failed := false
	var stopDB func()
	defer func() {
		if stopDB != nil {
			stopDB()
		}
	}()
	for _, pattern := range flag.Args() {
		pkgs, err := listPackages(pattern)
		if err != nil {
			fatal(err)
		}
		for _, p := range pkgs {
			if p.usesDynamoDB && os.Getenv("IDEMKIT_TEST_DYNAMODB_ENDPOINT") == "" && stopDB == nil {
				inst, err := ddblocal.Start(context.Background(), ddblocal.Options{})
				if err != nil {
					fatal(fmt.Errorf("start DynamoDB Local for %s: %w", p.ImportPath, err))
				}
				os.Setenv("IDEMKIT_TEST_DYNAMODB_ENDPOINT", inst.Endpoint())
				stopDB = func() { _ = inst.Stop() }
			}
			res, err := mutatePackage(cfg, p)
			if err != nil {
				fatal(err)
			}
			res.write(w)
			if res.score() < cfg.min {
				failed = true
			}
		}
	}
	if *out != "" {
		if err := os.WriteFile(*out, report.Bytes(), 0o644); err != nil {
			fatal(err)
		}
	}
	if failed {
		fmt.Fprintf(os.Stderr, "mutate: a package scored below %.0f%%\n", cfg.min)
		if stopDB != nil {
			stopDB()
		}
		os.Exit(1)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "mutate:", err)
	os.Exit(1)
}

// readEquivalent reads `ID  file:line  reason...` lines; # starts a comment. The reason is required.
func readEquivalent(path string) (map[string]string, error) {
	m := map[string]string{}
	if path == "" {
		return m, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 3 {
			return nil, fmt.Errorf("%s:%d: want `ID  file:line  reason`, got %q", path, n, line)
		}
		m[fields[0]] = strings.Join(fields[2:], " ")
	}
	return m, sc.Err()
}

type pkg struct {
	ImportPath   string
	Dir          string
	GoFiles      []string
	Root         string // module root
	usesDynamoDB bool
}

func listPackages(pattern string) ([]pkg, error) {
	cmd := exec.Command("go", "list", "-json", pattern)
	cmd.Stderr = os.Stderr
	outb, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list %s: %w", pattern, err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(outb))
	for dec.More() {
		var p struct {
			ImportPath   string
			Dir          string
			GoFiles      []string
			Module       struct{ Dir string }
			TestImports  []string
			XTestImports []string
		}
		if err := dec.Decode(&p); err != nil {
			return nil, err
		}
		if len(p.GoFiles) == 0 {
			continue
		}
		q := pkg{ImportPath: p.ImportPath, Dir: p.Dir, GoFiles: p.GoFiles, Root: p.Module.Dir}
		for _, imp := range append(p.TestImports, p.XTestImports...) {
			if imp == ddbtestPkg {
				q.usesDynamoDB = true
			}
		}
		pkgs = append(pkgs, q)
	}
	return pkgs, nil
}

// Result kinds.
const (
	killed     = "KILLED"
	timedOut   = "TIMEOUT" // killed by the test binary's timeout: a test waited forever
	survived   = "SURVIVED"
	uncovered  = "SURVIVED" // same verdict, no run needed
	notViable  = "NOT-VIABLE"
	equivalent = "EQUIVALENT"
)

type outcome struct {
	m    *mutant
	kind string
	note string // "not covered", the equivalence reason, or the failing test
}

type pkgResult struct {
	pkg      pkg
	outcomes []outcome
	baseline time.Duration
}

func (r *pkgResult) count(kinds ...string) int {
	n := 0
	for _, o := range r.outcomes {
		for _, k := range kinds {
			if o.kind == k {
				n++
				break
			}
		}
	}
	return n
}

func (r *pkgResult) score() float64 {
	k := r.count(killed, timedOut)
	s := r.count(survived)
	if k+s == 0 {
		return 100
	}
	return 100 * float64(k) / float64(k+s)
}

func (r *pkgResult) write(w io.Writer) {
	fmt.Fprintf(w, "== %s: score %.1f%%  killed %d (timeout %d)  survived %d  equivalent %d  not-viable %d\n",
		r.pkg.ImportPath, r.score(), r.count(killed, timedOut), r.count(timedOut), r.count(survived),
		r.count(equivalent), r.count(notViable))
	for _, o := range r.outcomes {
		switch o.kind {
		case survived, equivalent, timedOut:
		default:
			continue
		}
		fmt.Fprintf(w, "%s %s:%d:%d %s id=%s func=%s", o.kind, o.m.File, o.m.Line, o.m.Col, o.m.Op, o.m.ID, o.m.Func)
		if o.note != "" {
			fmt.Fprintf(w, " (%s)", o.note)
		}
		fmt.Fprintf(w, "\n  - %s\n  + %s\n", o.m.Orig, o.m.Mut)
	}
}

func mutatePackage(cfg config, p pkg) (*pkgResult, error) {
	work, err := os.MkdirTemp("", "mutate-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)

	checker, err := newChecker(p)
	if err != nil {
		return nil, err
	}
	var mutants []*mutant
	for _, name := range p.GoFiles {
		abs := filepath.Join(p.Dir, name)
		rel, _ := filepath.Rel(p.Root, abs)
		rel = filepath.ToSlash(rel)
		if cfg.files != nil && !cfg.files.MatchString(rel) {
			continue
		}
		ms, err := checker.mutants(abs, rel)
		if err != nil {
			return nil, err
		}
		for _, m := range ms {
			if (len(cfg.ids) == 0 || cfg.ids[m.ID]) && sampled(m.ID, cfg.sample) {
				mutants = append(mutants, m)
			}
		}
	}
	res := &pkgResult{pkg: p}
	if len(mutants) == 0 {
		return res, nil
	}

	// Baseline: the unmutated tests must pass; their run time gives the mutants' timeout, their coverage the
	// lines worth running. The package's own tests come first, then those of -tests.
	var suites []*suite
	start := time.Now()
	for i, tp := range append([]pkg{p}, cfg.tests...) {
		s, err := baseline(cfg, p, tp, filepath.Join(work, fmt.Sprint("s", i)))
		if err != nil {
			return nil, err
		}
		suites = append(suites, s)
	}
	res.baseline = time.Since(start)
	timeout := max(cfg.minTimeout, time.Duration(cfg.factor*float64(res.baseline)))
	ntests := 0
	for _, s := range suites {
		ntests += len(s.tests)
	}
	fmt.Fprintf(os.Stderr, "mutate: %s: %d mutants, %d tests, baseline %s, timeout %s\n", p.ImportPath, len(mutants), ntests, res.baseline.Round(time.Millisecond), timeout.Round(time.Second))

	res.outcomes = make([]outcome, len(mutants))
	var toRun []int
	runs := make([][]string, len(mutants)) // the -test.run of each mutant in each suite ("": none of its tests)
	for i, m := range mutants {
		o := outcome{m: m}
		switch {
		case cfg.equivalent[m.ID] != "":
			o.kind, o.note = equivalent, cfg.equivalent[m.ID]
		default:
			if err := checker.typeCheck(m); err != nil {
				o.kind, o.note = notViable, err.Error()
			} else {
				covered := false
				for _, s := range suites {
					run := s.selectTests(m)
					runs[i] = append(runs[i], run)
					covered = covered || run != ""
				}
				if covered {
					toRun = append(toRun, i)
				} else {
					o.kind, o.note = uncovered, "not covered"
					if cfg.verbose {
						fmt.Fprintf(os.Stderr, "mutate: %s (not covered) %s:%d %s id=%s\n  - %s\n  + %s\n", o.kind, m.File, m.Line, m.Op, m.ID, m.Orig, m.Mut)
					}
				}
			}
		}
		res.outcomes[i] = o
	}

	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		done int
		next = make(chan int)
	)
	for w := 0; w < cfg.jobs; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			dir := filepath.Join(work, fmt.Sprint("w", w))
			_ = os.MkdirAll(dir, 0o755)
			for i := range next {
				kind, note := survived, ""
				for si, s := range suites {
					if runs[i][si] == "" {
						continue
					}
					if kind, note = runMutant(s.pkg, p, res.outcomes[i].m, dir, runs[i][si], timeout); kind != survived {
						break
					}
				}
				mu.Lock()
				res.outcomes[i].kind, res.outcomes[i].note = kind, note
				done++
				if cfg.verbose || kind == survived {
					m := res.outcomes[i].m
					// The id too, so that the survivors of a run stopped early can be rerun with -ids.
					fmt.Fprintf(os.Stderr, "mutate: [%d/%d] %s %s:%d %s id=%s\n", done, len(toRun), kind, m.File, m.Line, m.Op, m.ID)
					if kind == survived {
						fmt.Fprintf(os.Stderr, "  - %s\n  + %s\n", m.Orig, m.Mut)
					}
				}
				mu.Unlock()
			}
		}(w)
	}
	for _, i := range toRun {
		next <- i
	}
	close(next)
	wg.Wait()
	return res, nil
}

// suite is the test binary of one package that judges the mutants: its top-level tests and what each covers of the
// mutated package.
type suite struct {
	pkg   pkg
	tests map[string]*profile
}

// baseline builds tp's tests with coverage of p and runs each top-level test alone: a mutant then runs only the
// tests that execute its line.
func baseline(cfg config, p, tp pkg, work string) (*suite, error) {
	if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, err
	}
	bin := filepath.Join(work, "baseline.test")
	if out, err := goTestC(tp, p, bin, "", true); err != nil {
		return nil, fmt.Errorf("build baseline tests of %s: %v\n%s", tp.ImportPath, err, out)
	}
	out, err := exec.Command(bin, "-test.list", ".").Output()
	if err != nil {
		return nil, fmt.Errorf("list the tests of %s: %w", tp.ImportPath, err)
	}
	var runRE *regexp.Regexp
	if cfg.run != "" {
		runRE = regexp.MustCompile(cfg.run)
	}
	s := &suite{pkg: tp, tests: map[string]*profile{}}
	for i, name := range strings.Fields(string(out)) {
		if !(strings.HasPrefix(name, "Test") || strings.HasPrefix(name, "Fuzz")) || (runRE != nil && !runRE.MatchString(name)) {
			continue
		}
		cover := filepath.Join(work, fmt.Sprintf("cover%d.out", i))
		if out, err := runTests(context.Background(), tp, bin, "^"+name+"$", time.Hour, "-test.coverprofile="+cover); err != nil {
			return nil, fmt.Errorf("%s of %s fails without any mutant: %v\n%s", name, tp.ImportPath, err, tail(out))
		}
		if s.tests[name], err = readProfile(cover, p); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// selectTests is the -test.run of the suite's tests that execute m's line, or "" when none does.
func (s *suite) selectTests(m *mutant) string {
	var names []string
	for name, prof := range s.tests {
		if !m.InFunc || prof.covers(m) {
			names = append(names, regexp.QuoteMeta(name))
		}
	}
	if len(names) == 0 {
		return ""
	}
	sort.Strings(names)
	return "^(" + strings.Join(names, "|") + ")$"
}

// runMutant builds the tests of tp (p itself or a -tests package) with p's mutated file in an overlay and runs
// them.
func runMutant(tp, p pkg, m *mutant, dir, run string, timeout time.Duration) (kind, note string) {
	src, err := os.ReadFile(m.abs)
	if err != nil {
		return notViable, err.Error()
	}
	mutated := filepath.Join(dir, filepath.Base(m.abs))
	if err := os.WriteFile(mutated, m.apply(src), 0o644); err != nil {
		return notViable, err.Error()
	}
	overlay := filepath.Join(dir, "overlay.json")
	ov, _ := json.Marshal(map[string]map[string]string{"Replace": {m.abs: mutated}})
	if err := os.WriteFile(overlay, ov, 0o644); err != nil {
		return notViable, err.Error()
	}
	bin := filepath.Join(dir, "mutant.test")
	_ = os.Remove(bin)
	if out, err := goTestC(tp, p, bin, overlay, false); err != nil {
		return notViable, firstLine(out)
	}
	out, err := runTests(context.Background(), tp, bin, run, timeout, "-test.failfast")
	switch {
	case err == nil:
		return survived, ""
	case bytes.Contains(out, []byte("panic: test timed out")) || errors.Is(err, context.DeadlineExceeded):
		return timedOut, "test binary timed out"
	default:
		return killed, failedTest(out)
	}
}

// goTestC builds the test binary of tp; with cover, instrumented for coverage of p (the mutated package).
func goTestC(tp, p pkg, bin, overlay string, cover bool) ([]byte, error) {
	// No vet and no symbol tables: a mutant's build is mostly the link of a large test binary.
	args := []string{"test", "-c", "-vet=off", "-ldflags=-s -w", "-o", bin}
	if overlay != "" {
		args = append(args, "-overlay", overlay)
	}
	if cover {
		args = append(args, "-cover", "-covermode=count", "-coverpkg="+p.ImportPath)
	}
	cmd := exec.Command("go", append(args, tp.ImportPath)...)
	cmd.Dir = tp.Root
	return cmd.CombinedOutput()
}

// runTests runs a test binary in the package directory (as go test does). The binary's own -test.timeout makes a
// hanging test panic with every goroutine's stack; the context is the backstop, killing the process group.
func runTests(ctx context.Context, p pkg, bin, run string, timeout time.Duration, extra ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout+time.Minute)
	defer cancel()
	args := []string{"-test.count=1", "-test.timeout=" + timeout.String()}
	if run != "" {
		args = append(args, "-test.run="+run)
	}
	cmd := exec.CommandContext(ctx, bin, append(args, extra...)...)
	cmd.Dir = p.Dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		return out, context.DeadlineExceeded
	}
	return out, err
}

var failRE = regexp.MustCompile(`(?m)^\s*--- FAIL: (\S+)`)

func failedTest(out []byte) string {
	var names []string
	for _, m := range failRE.FindAllSubmatch(out, -1) {
		names = append(names, string(m[1]))
	}
	if len(names) == 0 {
		return "test binary failed"
	}
	sort.Strings(names)
	return names[len(names)-1]
}

func firstLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(l, "#") {
			return l
		}
	}
	return s
}

func tail(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	return strings.Join(lines, "\n")
}

// sampled reports whether the mutant with this id (hex) is among one in n (every mutant when n <= 1). The id is a
// hash, so the sample is spread over the file's operators and lines, and the same mutants are chosen every run.
func sampled(id string, n uint64) bool {
	if n <= 1 {
		return true
	}
	v, err := strconv.ParseUint(id, 16, 64)
	return err != nil || v%n == 0
}
