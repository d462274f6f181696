package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
)

// checker type-checks a package with one file replaced, against the export data of its dependencies (built by
// `go list -export`), so a mutant that does not compile costs milliseconds instead of a compiler run.
type checker struct {
	p     pkg
	fset  *token.FileSet
	files map[string]*ast.File // absolute path -> parsed original
	srcs  map[string][]byte
	imp   types.Importer
	info  *types.Info
}

func newChecker(p pkg) (*checker, error) {
	cmd := exec.Command("go", "list", "-export", "-deps", "-json", p.ImportPath)
	cmd.Dir = p.Root
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list -export %s: %w", p.ImportPath, err)
	}
	exports := map[string]string{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var d struct{ ImportPath, Export string }
		if err := dec.Decode(&d); err != nil {
			return nil, err
		}
		exports[d.ImportPath] = d.Export
	}
	c := &checker{p: p, fset: token.NewFileSet(), files: map[string]*ast.File{}, srcs: map[string][]byte{}}
	c.imp = importer.ForCompiler(c.fset, "gc", func(path string) (io.ReadCloser, error) {
		f, ok := exports[path]
		if !ok || f == "" {
			return nil, fmt.Errorf("no export data for %s", path)
		}
		return os.Open(f)
	})
	for _, name := range p.GoFiles {
		abs := filepath.Join(p.Dir, name)
		src, err := os.ReadFile(abs)
		if err != nil {
			return nil, err
		}
		f, err := parser.ParseFile(c.fset, abs, src, parser.ParseComments|parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		c.files[abs], c.srcs[abs] = f, src
	}
	c.info = &types.Info{Types: map[ast.Expr]types.TypeAndValue{}}
	if _, err := c.check(c.info, "", nil); err != nil {
		return nil, fmt.Errorf("type-check %s: %w", p.ImportPath, err)
	}
	return c, nil
}

// check type-checks the package, with the file at abs replaced by src when abs is not empty.
func (c *checker) check(info *types.Info, abs string, src []byte) (*types.Package, error) {
	var files []*ast.File
	for _, name := range c.p.GoFiles {
		p := filepath.Join(c.p.Dir, name)
		if p == abs {
			f, err := parser.ParseFile(c.fset, p, src, parser.SkipObjectResolution)
			if err != nil {
				return nil, err
			}
			files = append(files, f)
			continue
		}
		files = append(files, c.files[p])
	}
	var first error
	conf := types.Config{Importer: c.imp, Error: func(err error) {
		if first == nil {
			first = err
		}
	}}
	pkg, _ := conf.Check(c.p.ImportPath, c.fset, files, info)
	return pkg, first
}

func (c *checker) typeCheck(m *mutant) error {
	_, err := c.check(nil, m.abs, m.apply(c.srcs[m.abs]))
	if err != nil {
		// Keep only "line:col: message": the temp file's path means nothing in the report.
		msg := err.Error()
		if i := strings.Index(msg, ".go:"); i >= 0 {
			msg = path.Base(filepath.ToSlash(msg[:i])) + msg[i:]
		}
		return fmt.Errorf("%s", msg)
	}
	return nil
}

func (c *checker) mutants(abs, rel string) ([]*mutant, error) {
	f, ok := c.files[abs]
	if !ok {
		return nil, fmt.Errorf("%s is not a file of %s", abs, c.p.ImportPath)
	}
	isString := func(e ast.Expr) bool {
		tv, ok := c.info.Types[e]
		if !ok || tv.Type == nil {
			return false
		}
		b, ok := tv.Type.Underlying().(*types.Basic)
		return ok && b.Info()&types.IsString != 0
	}
	return generate(c.fset, f, c.srcs[abs], abs, rel, isString), nil
}

// block is one basic block of a coverage profile.
type block struct{ sl, sc, el, ec int }

func (b block) contains(m *mutant) bool {
	after := m.Line > b.sl || (m.Line == b.sl && m.Col >= b.sc)
	before := m.Line < b.el || (m.Line == b.el && m.Col <= b.ec)
	return after && before
}

// profile is a parsed -covermode=count profile of one package: per file base name, the blocks that ran and all
// blocks.
type profile struct{ ran, all map[string][]block }

func readProfile(file string, p pkg) (*profile, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	prof := &profile{ran: map[string][]block{}, all: map[string][]block{}}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "mode:") {
			continue
		}
		// import/path/file.go:12.3,14.5 2 1
		colon := strings.LastIndex(line, ":")
		if colon < 0 || path.Dir(line[:colon]) != p.ImportPath {
			continue
		}
		var b block
		var stmts, count int
		if _, err := fmt.Sscanf(line[colon+1:], "%d.%d,%d.%d %d %d", &b.sl, &b.sc, &b.el, &b.ec, &stmts, &count); err != nil {
			return nil, fmt.Errorf("coverage line %q: %w", line, err)
		}
		base := path.Base(line[:colon])
		prof.all[base] = append(prof.all[base], b)
		if count > 0 {
			prof.ran[base] = append(prof.ran[base], b)
		}
	}
	return prof, sc.Err()
}

// covers reports whether the profile's run executed the mutant's position. A position in no block at all (a
// case's expression, which the cover tool does not instrument) counts as executed, to be safe.
func (prof *profile) covers(m *mutant) bool {
	base := filepath.Base(m.abs)
	in := func(blocks []block) bool {
		for _, b := range blocks {
			if b.contains(m) {
				return true
			}
		}
		return false
	}
	return in(prof.ran[base]) || !in(prof.all[base])
}
