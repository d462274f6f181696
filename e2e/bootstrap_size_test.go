package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// maxBootstrapBytes is the size budget of a deployed bootstrap: 12 MiB (binary megabytes, 12*1024*1024 bytes).
const maxBootstrapBytes = 12 * 1024 * 1024

// TestBootstrapSize cross-builds each function of template.yaml the way SAM's go1.x builder does
// (`go build [-trimpath] -o bootstrap .` in the CodeUri directory, GOOS=linux, GOARCH from Architectures,
// CGO_ENABLED=0 as `make build` sets it; -trimpath because of BuildProperties.TrimGoPath) and checks the size.
//
// The budget applies to the release build: stripped (-ldflags="-s -w") and with -tags lambda.norpc. The tag
// matters more than stripping: without it aws-lambda-go compiles in its net/rpc entry point (only the retired
// go1.x runtime uses it), net/rpc imports html/template, and text/template's reflective method calls make the
// linker keep every exported method of every reachable type (all DynamoDB client operations, for instance), which
// costs about 4 MB. SAM gets the tag from GOFLAGS (-tags=lambda.norpc) in the environment of `sam build`, and
// `-ldflags=-s` (which implies -w) goes there as well: `make build` sets both (TestMakeBuildIsTheReleaseBuild);
// lambdalocal always builds with the tag. The sizes of the other configurations are logged for comparison, not
// asserted.
func TestBootstrapSize(t *testing.T) {
	tpl := loadTemplate(t)
	goVersion, err := exec.Command("go", "env", "GOVERSION").Output()
	require.NoError(t, err)
	t.Logf("toolchain %s", strings.TrimSpace(string(goVersion)))

	for _, fn := range functions(t, tpl) {
		codeURI := scalar(fnProperty(tpl, fn, "CodeUri"))
		arch := "x86_64"
		if a := fnProperty(tpl, fn, "Architectures"); a != nil && len(a.Content) == 1 {
			arch = a.Content[0].Value
		}
		trim := scalar(get(tpl, "Resources", fn, "Metadata", "BuildProperties", "TrimGoPath")) == "true"
		t.Run(fn, func(t *testing.T) {
			goarch := map[string]string{"arm64": "arm64", "x86_64": "amd64"}[arch]
			require.NotEmpty(t, goarch, "unknown architecture %q", arch)
			var samFlags []string // what SAM's builder passes for this function's metadata
			if trim {
				samFlags = append(samFlags, "-trimpath")
			}
			variants := []struct {
				name  string
				flags []string
			}{
				{"as sam build makes it", nil},
				{"stripped", []string{"-ldflags=-s -w"}},
				{"stripped, lambda.norpc (release)", []string{"-tags", "lambda.norpc", "-ldflags=-s -w"}},
			}
			sizes := map[string]int64{}
			for _, v := range variants {
				flags := append(append([]string{}, samFlags...), v.flags...)
				out := filepath.Join(t.TempDir(), "bootstrap")
				args := append(append([]string{"build"}, flags...), "-o", out, ".")
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
				cmd := exec.CommandContext(ctx, "go", args...)
				cmd.Dir = filepath.Join(root, filepath.FromSlash(codeURI))
				cmd.Env = append(buildEnv(), "GOOS=linux", "GOARCH="+goarch, "CGO_ENABLED=0")
				msg, err := cmd.CombinedOutput()
				cancel()
				require.NoError(t, err, "go %s in %s:\n%s", strings.Join(args, " "), codeURI, msg)
				st, err := os.Stat(out)
				require.NoError(t, err)
				sizes[v.name] = st.Size()
				t.Logf("%s linux/%s %-34s %9d bytes = %5.2f MiB  (GOOS=linux GOARCH=%s CGO_ENABLED=0 go build %s -o bootstrap .)",
					fn, goarch, v.name+":", st.Size(), float64(st.Size())/(1<<20), goarch, shellJoin(flags))
			}
			release := sizes[variants[len(variants)-1].name]
			assert.LessOrEqual(t, release, int64(maxBootstrapBytes),
				"%s: the release bootstrap is %d bytes (%.2f MiB), over the 12 MiB budget", fn, release, float64(release)/(1<<20))
		})
	}
}

// buildEnv is the test's environment without settings that would change what go build produces.
func buildEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "GOFLAGS=") || strings.HasPrefix(kv, "GOOS=") || strings.HasPrefix(kv, "GOARCH=") ||
			strings.HasPrefix(kv, "CGO_ENABLED=") || strings.HasPrefix(kv, "GOARM64=") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// shellJoin joins flags for a command line to copy, quoting a value with spaces: -ldflags="-s -w".
func shellJoin(flags []string) string {
	out := make([]string, len(flags))
	for i, f := range flags {
		if name, value, ok := strings.Cut(f, "="); ok && strings.Contains(value, " ") {
			f = name + `="` + value + `"`
		}
		out[i] = f
	}
	return strings.Join(out, " ")
}

// TestMakeBuildIsTheReleaseBuild: the budget above is for the build `make build` asks SAM for, so its recipe must
// pass the tag and the stripping through GOFLAGS.
func TestMakeBuildIsTheReleaseBuild(t *testing.T) {
	mk, err := os.ReadFile(filepath.Join(root, "Makefile"))
	require.NoError(t, err)
	var recipe string
	lines := strings.Split(string(mk), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "build:") && i+1 < len(lines) {
			recipe = lines[i+1]
		}
	}
	require.NotEmpty(t, recipe, "Makefile has no build target")
	assert.Contains(t, recipe, "CGO_ENABLED=0")
	assert.Contains(t, recipe, `GOFLAGS="-tags=lambda.norpc -ldflags=-s `)
	assert.Contains(t, recipe, "sam build")
}
