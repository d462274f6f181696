package e2e

import (
	"context"
	"debug/elf"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/idemkit/idemkit/idempotent/dynamostore"
	"github.com/idemkit/idemkit/internal/testwait"
)

// ---- template.yaml as a yaml.Node tree (custom tags such as !Ref stay tagged scalars) ----

func loadTemplate(t *testing.T) *yaml.Node {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, "template.yaml"))
	require.NoError(t, err)
	var doc yaml.Node
	require.NoError(t, yaml.Unmarshal(raw, &doc))
	require.Equal(t, yaml.DocumentNode, doc.Kind)
	return doc.Content[0]
}

// get follows a path of mapping keys; nil when any is missing.
func get(n *yaml.Node, path ...string) *yaml.Node {
	for _, key := range path {
		if n == nil || n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				next = n.Content[i+1]
			}
		}
		n = next
	}
	return n
}

// keys lists a mapping's keys in document order.
func keys(n *yaml.Node) []string {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	var out []string
	for i := 0; i < len(n.Content); i += 2 {
		out = append(out, n.Content[i].Value)
	}
	return out
}

func scalar(n *yaml.Node) string {
	if n == nil || n.Kind != yaml.ScalarNode {
		return ""
	}
	return n.Value
}

// functions returns the logical IDs of the template's AWS::Serverless::Function resources.
func functions(t *testing.T, tpl *yaml.Node) []string {
	t.Helper()
	var out []string
	for _, id := range keys(get(tpl, "Resources")) {
		if scalar(get(tpl, "Resources", id, "Type")) == "AWS::Serverless::Function" {
			out = append(out, id)
		}
	}
	require.NotEmpty(t, out, "template.yaml declares no AWS::Serverless::Function")
	return out
}

// fnProperty is a function's property, falling back to Globals.Function.
func fnProperty(tpl *yaml.Node, fn string, path ...string) *yaml.Node {
	if n := get(tpl, append([]string{"Resources", fn, "Properties"}, path...)...); n != nil {
		return n
	}
	return get(tpl, append([]string{"Globals", "Function"}, path...)...)
}

// ---- the environment variables the handlers read ----

// Variables Lambda or the AWS SDK provide themselves; a handler may read them without the template declaring
// them. Everything else a handler reads must be declared (CONTRACT §4).
func providedByLambda(name string) bool {
	switch name {
	case "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
		"AWS_PROFILE", "_HANDLER", "_X_AMZN_TRACE_ID", "TZ", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR",
		"AWS_EXECUTION_ENV", "AWS_XRAY_CONTEXT_MISSING", "AWS_XRAY_DAEMON_ADDRESS":
		return true
	}
	return strings.HasPrefix(name, "AWS_LAMBDA_")
}

var (
	envConstRe   = regexp.MustCompile(`\b(Env[A-Za-z]*)\s*=\s*"([A-Za-z_][A-Za-z0-9_]*)"`)
	envLiteralRe = regexp.MustCompile(`\bos\.(?:Getenv|LookupEnv)\(\s*"([A-Za-z_][A-Za-z0-9_]*)"\s*\)`)
)

// handlerEnvVars greps the non-test Go sources under handlers/ for Env* constants and os.Getenv/LookupEnv
// literals. It returns every variable found and, per Go package directory, the variables that package's own
// files read: a literal, or a use (not the definition) of an Env* constant from any handlers/ package.
func handlerEnvVars(t *testing.T) (all []string, readIn map[string][]string) {
	t.Helper()
	sources := map[string]string{} // file -> source
	consts := map[string]string{}  // constant identifier -> variable
	found := map[string]bool{}
	err := filepath.WalkDir(filepath.Join(root, "handlers"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		sources[path] = string(src)
		for _, m := range envConstRe.FindAllStringSubmatch(string(src), -1) {
			consts[m[1]] = m[2]
		}
		return nil
	})
	require.NoError(t, err)
	readIn = map[string][]string{}
	for path, src := range sources {
		dir := filepath.Dir(path)
		var vars []string
		for _, m := range envLiteralRe.FindAllStringSubmatch(src, -1) {
			vars = append(vars, m[1])
		}
		for ident, name := range consts {
			uses := len(regexp.MustCompile(`\b`+ident+`\b`).FindAllStringIndex(src, -1)) -
				len(regexp.MustCompile(`\b`+ident+`\s*=\s*"`).FindAllStringIndex(src, -1))
			if uses > 0 {
				vars = append(vars, name)
			}
		}
		for _, v := range vars {
			if !providedByLambda(v) {
				found[v] = true
				readIn[dir] = append(readIn[dir], v)
			}
		}
	}
	for name := range found {
		all = append(all, name)
	}
	sort.Strings(all)
	return all, readIn
}

// packageDirs lists the directories of the module's packages that the package in dir depends on (itself included).
func packageDirs(t *testing.T, dir string) []string {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.Dir}}{{end}}", ".")
	cmd.Dir = dir
	out, err := cmd.Output()
	require.NoError(t, err, "go list -deps in %s", dir)
	var dirs []string
	for _, d := range strings.Fields(string(out)) {
		if strings.HasPrefix(d, root+string(filepath.Separator)) {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

func TestTemplateDeclaresHandlerEnvironment(t *testing.T) {
	tpl := loadTemplate(t)
	vars, readIn := handlerEnvVars(t)
	// The grep must at least find CONTRACT §4's variables, or it is broken.
	for _, want := range []string{"IDEMPOTENCY_TABLE", "PAYMENTS_TABLE", "USERS_TABLE", "AWS_ENDPOINT_URL_DYNAMODB"} {
		require.Contains(t, vars, want, "the handlers/ grep must find %s", want)
	}
	resources := map[string]bool{}
	for _, id := range keys(get(tpl, "Resources")) {
		resources[id] = true
	}
	for _, fn := range functions(t, tpl) {
		codeURI := scalar(fnProperty(tpl, fn, "CodeUri"))
		t.Run(fn, func(t *testing.T) {
			require.NotEmpty(t, codeURI)
			reads := map[string]bool{}
			for _, d := range packageDirs(t, filepath.Join(root, filepath.FromSlash(codeURI))) {
				for _, v := range readIn[d] {
					reads[v] = true
				}
			}
			t.Logf("%s reads %v", fn, reads)
			declared := map[string]*yaml.Node{}
			for _, src := range []*yaml.Node{
				get(tpl, "Globals", "Function", "Environment", "Variables"),
				get(tpl, "Resources", fn, "Properties", "Environment", "Variables"),
			} {
				for i := 0; src != nil && i+1 < len(src.Content); i += 2 {
					declared[src.Content[i].Value] = src.Content[i+1]
				}
			}
			for v := range reads {
				assert.Contains(t, declared, v, "%s reads %s, so the template must declare it (Globals or the function)", fn, v)
			}
			for name, val := range declared {
				if val.Tag == "!Ref" {
					assert.True(t, resources[val.Value], "%s: %s: !Ref %s names no resource", fn, name, val.Value)
				}
			}
		})
	}
}

func TestTemplateIdempotencyTableMatchesDynamostore(t *testing.T) {
	tpl := loadTemplate(t)
	ref := get(tpl, "Globals", "Function", "Environment", "Variables", "IDEMPOTENCY_TABLE")
	require.NotNil(t, ref, "Globals declare IDEMPOTENCY_TABLE")
	require.Equal(t, "!Ref", ref.Tag, "IDEMPOTENCY_TABLE is a !Ref to the table")
	table := get(tpl, "Resources", ref.Value)
	require.NotNil(t, table, "resource %s", ref.Value)
	assert.Equal(t, "AWS::DynamoDB::Table", scalar(get(table, "Type")))

	props := get(table, "Properties")
	ks := get(props, "KeySchema")
	require.NotNil(t, ks)
	require.Len(t, ks.Content, 1, "the idempotency table has a partition key only (dynamostore's default)")
	assert.Equal(t, dynamostore.DefaultIDAttr, scalar(get(ks.Content[0], "AttributeName")))
	assert.Equal(t, "HASH", scalar(get(ks.Content[0], "KeyType")))

	types := map[string]string{}
	for _, def := range get(props, "AttributeDefinitions").Content {
		types[scalar(get(def, "AttributeName"))] = scalar(get(def, "AttributeType"))
	}
	assert.Equal(t, map[string]string{dynamostore.DefaultIDAttr: "S"}, types)

	ttl := get(props, "TimeToLiveSpecification")
	assert.Equal(t, dynamostore.DefaultExpirationAttr, scalar(get(ttl, "AttributeName")))
	assert.Equal(t, "true", scalar(get(ttl, "Enabled")))
}

// TestTemplateFunctionsBuild builds each CodeUri like SAM's go1.x builder: `go build -o <dir>/bootstrap .` in
// the CodeUri directory for linux and the function's architecture, without cgo.
func TestTemplateFunctionsBuild(t *testing.T) {
	tpl := loadTemplate(t)
	for _, fn := range functions(t, tpl) {
		codeURI := scalar(fnProperty(tpl, fn, "CodeUri"))
		arch := "x86_64" // Lambda's default
		if a := fnProperty(tpl, fn, "Architectures"); a != nil && len(a.Content) == 1 {
			arch = a.Content[0].Value
		}
		t.Run(fn, func(t *testing.T) {
			t.Parallel()
			require.NotEmpty(t, codeURI, "%s has a CodeUri", fn)
			goarch, machine := map[string]string{"arm64": "arm64", "x86_64": "amd64"}[arch],
				map[string]elf.Machine{"arm64": elf.EM_AARCH64, "x86_64": elf.EM_X86_64}[arch]
			require.NotEmpty(t, goarch, "unknown architecture %q", arch)
			require.Equal(t, "go1.x", scalar(get(tpl, "Resources", fn, "Metadata", "BuildMethod")))

			out := filepath.Join(t.TempDir(), "bootstrap")
			// A cross-compiled build on a loaded 2-core machine takes what it takes: bounded only by the test's own
			// deadline, never by a fixed budget.
			ctx, cancel := context.WithTimeout(context.Background(), testwait.Bound(t))
			defer cancel()
			cmd := exec.CommandContext(ctx, "go", "build", "-o", out, ".")
			cmd.Dir = filepath.Join(root, filepath.FromSlash(codeURI))
			cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+goarch, "CGO_ENABLED=0")
			msg, err := cmd.CombinedOutput()
			require.NoError(t, err, "go build in %s:\n%s", codeURI, msg)

			f, err := elf.Open(out)
			require.NoError(t, err, "bootstrap is an ELF executable")
			defer f.Close()
			assert.Equal(t, machine, f.Machine)
			assert.Equal(t, elf.ET_EXEC, f.Type, "a static executable (no cgo, no PIE)")
			assert.Nil(t, f.Section(".interp"), "no dynamic loader: it must not depend on the host's libc")
		})
	}
}

// TestTemplateRoutesHaveEvents: every Api event route of every function has a sample event in events/ whose
// resource and httpMethod match it.
func TestTemplateRoutesHaveEvents(t *testing.T) {
	tpl := loadTemplate(t)
	files, err := filepath.Glob(filepath.Join(root, "events", "*.json"))
	require.NoError(t, err)
	have := map[string][]string{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		require.NoError(t, err)
		var ev struct {
			Resource   string `json:"resource"`
			HTTPMethod string `json:"httpMethod"`
		}
		require.NoError(t, json.Unmarshal(raw, &ev), f)
		route := strings.ToUpper(ev.HTTPMethod) + " " + ev.Resource
		have[route] = append(have[route], filepath.Base(f))
	}
	var routes int
	for _, fn := range functions(t, tpl) {
		events := get(tpl, "Resources", fn, "Properties", "Events")
		for _, name := range keys(events) {
			ev := get(events, name)
			if scalar(get(ev, "Type")) != "Api" {
				continue
			}
			routes++
			route := strings.ToUpper(scalar(get(ev, "Properties", "Method"))) + " " + scalar(get(ev, "Properties", "Path"))
			t.Run(fn+" "+route, func(t *testing.T) {
				assert.NotEmpty(t, have[route], "no file in events/ has resource+httpMethod %q", route)
			})
		}
	}
	require.Positive(t, routes, "template.yaml declares no Api event")
}
