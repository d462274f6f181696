package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"go/ast"
	"go/token"
	"sort"
	"strconv"
	"strings"
)

// edit replaces src[start:end] with text.
type edit struct {
	start, end int
	text       string
}

// mutant is one small change to one file: the operator that made it, the edits that apply it, and where it is.
type mutant struct {
	Op     string // operator name, e.g. "boundary"
	File   string // path relative to the module root, slash-separated
	Line   int
	Col    int
	Func   string // enclosing function ("Type.Method", "Func") or "-" at package level
	InFunc bool   // inside a function body: coverage tells whether a test runs it
	Orig   string // the original line, trimmed
	Mut    string // the mutated line(s), trimmed
	ID     string // stable across line moves: hash of file, func, operator, lines and occurrence
	edits  []edit
	abs    string // absolute path of the file
}

// apply returns src with the mutant's edits.
func (m *mutant) apply(src []byte) []byte {
	es := append([]edit(nil), m.edits...)
	sort.Slice(es, func(i, j int) bool { return es[i].start > es[j].start })
	out := append([]byte(nil), src...)
	for _, e := range es {
		out = append(out[:e.start:e.start], append([]byte(e.text), out[e.end:]...)...)
	}
	return out
}

var (
	boundary = map[token.Token]token.Token{token.LSS: token.LEQ, token.LEQ: token.LSS, token.GTR: token.GEQ, token.GEQ: token.GTR}
	negate   = map[token.Token]token.Token{token.EQL: token.NEQ, token.NEQ: token.EQL, token.LSS: token.GEQ, token.GEQ: token.LSS, token.GTR: token.LEQ, token.LEQ: token.GTR}
	logical  = map[token.Token]token.Token{token.LAND: token.LOR, token.LOR: token.LAND}
	arith    = map[token.Token]token.Token{token.ADD: token.SUB, token.SUB: token.ADD, token.MUL: token.QUO, token.QUO: token.MUL, token.REM: token.MUL}
	incdec   = map[token.Token]token.Token{token.INC: token.DEC, token.DEC: token.INC}
	opAssign = map[token.Token]token.Token{token.ADD_ASSIGN: token.SUB_ASSIGN, token.SUB_ASSIGN: token.ADD_ASSIGN}
)

// isString reports whether e has a string type; stringOf is nil when type information is missing, and then
// every + is mutated (a string concatenation mutant then fails to type-check and is counted as not viable).
type typeOracle func(e ast.Expr) (isString bool)

// generate lists every mutant of one parsed file. rel is the file's module-relative path.
func generate(fset *token.FileSet, f *ast.File, src []byte, abs, rel string, isString typeOracle) []*mutant {
	var out []*mutant
	off := func(p token.Pos) int { return fset.Position(p).Offset }
	funcName := "-"
	inFunc := false
	add := func(op string, at token.Pos, es ...edit) {
		p := fset.Position(at)
		out = append(out, &mutant{Op: op, File: rel, Line: p.Line, Col: p.Column, Func: funcName, InFunc: inFunc, edits: es, abs: abs})
	}
	replaceTok := func(op string, pos token.Pos, from, to token.Token) {
		add(op, pos, edit{off(pos), off(pos) + len(from.String()), to.String()})
	}
	removeStmts := func(list []ast.Stmt) {
		for _, s := range list {
			switch s := s.(type) {
			case *ast.ExprStmt, *ast.IncDecStmt, *ast.DeferStmt, *ast.GoStmt, *ast.SendStmt:
				add("remove-stmt", s.Pos(), edit{off(s.Pos()), off(s.End()), ""})
			case *ast.AssignStmt:
				if s.Tok != token.DEFINE {
					add("remove-stmt", s.Pos(), edit{off(s.Pos()), off(s.End()), ""})
				}
			}
		}
	}
	var visit func(n ast.Node) bool
	visit = func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.FuncDecl:
			if n.Body == nil {
				return false
			}
			name := n.Name.Name
			if n.Recv != nil && len(n.Recv.List) == 1 {
				name = recvName(n.Recv.List[0].Type) + "." + name
			}
			prevName, prevIn := funcName, inFunc
			funcName, inFunc = name, true
			ast.Inspect(n.Body, visit)
			funcName, inFunc = prevName, prevIn
			return false
		case *ast.GenDecl:
			if n.Tok == token.IMPORT {
				return false
			}
		case *ast.Field:
			// Struct tags, parameter and field types: nothing to mutate but array lengths, which only break the build.
			return false
		case *ast.ArrayType:
			return n.Len == nil
		case *ast.BinaryExpr:
			if to, ok := boundary[n.Op]; ok {
				replaceTok("boundary", n.OpPos, n.Op, to)
			}
			if to, ok := negate[n.Op]; ok {
				replaceTok("negate-cmp", n.OpPos, n.Op, to)
			}
			if to, ok := logical[n.Op]; ok {
				replaceTok("logical", n.OpPos, n.Op, to)
			}
			if to, ok := arith[n.Op]; ok && !(n.Op == token.ADD && isString != nil && isString(n)) {
				replaceTok("arith", n.OpPos, n.Op, to)
			}
		case *ast.UnaryExpr:
			if n.Op == token.NOT {
				add("remove-not", n.OpPos, edit{off(n.OpPos), off(n.OpPos) + 1, ""})
			}
		case *ast.IncDecStmt:
			replaceTok("incdec", n.TokPos, n.Tok, incdec[n.Tok])
		case *ast.AssignStmt:
			if to, ok := opAssign[n.Tok]; ok && !(isString != nil && len(n.Lhs) == 1 && isString(n.Lhs[0])) {
				replaceTok("arith", n.TokPos, n.Tok, to)
			}
		case *ast.IfStmt:
			add("negate-if", n.Cond.Pos(), edit{off(n.Cond.Pos()), off(n.Cond.Pos()), "!("}, edit{off(n.Cond.End()), off(n.Cond.End()), ")"})
			if len(n.Body.List) > 0 {
				add("remove-if-body", n.Body.List[0].Pos(), edit{off(n.Body.Lbrace) + 1, off(n.Body.Rbrace), ""})
			}
			if e, ok := n.Else.(*ast.BlockStmt); ok && len(e.List) > 0 {
				add("remove-else", e.List[0].Pos(), edit{off(e.Lbrace) + 1, off(e.Rbrace), ""})
			}
		case *ast.ForStmt:
			if n.Cond != nil {
				add("negate-if", n.Cond.Pos(), edit{off(n.Cond.Pos()), off(n.Cond.Pos()), "!("}, edit{off(n.Cond.End()), off(n.Cond.End()), ")"})
			}
		case *ast.BlockStmt:
			removeStmts(n.List)
		case *ast.CaseClause:
			removeStmts(n.Body)
		case *ast.CommClause:
			removeStmts(n.Body)
		case *ast.BasicLit:
			if n.Kind == token.INT {
				if v, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64); err == nil {
					to := "0"
					if v == 0 {
						to = "1"
					} else if v != 1 {
						to = strconv.FormatInt(v+1, 10)
					}
					add("const", n.Pos(), edit{off(n.Pos()), off(n.End()), to})
				}
			}
		case *ast.Ident:
			if n.Name == "true" || n.Name == "false" {
				to := map[string]string{"true": "false", "false": "true"}[n.Name]
				add("const", n.Pos(), edit{off(n.Pos()), off(n.End()), to})
			}
		}
		return true
	}
	ast.Inspect(f, visit)

	// Describe and name each mutant: the lines it touches, before and after.
	seen := map[string]int{}
	for _, m := range out {
		mutated := m.apply(src)
		first, last := m.lineSpan(src)
		m.Orig = trimLines(src, first, last)
		m.Mut = trimLines(mutated, first, last+len(mutated)-len(src))
		key := strings.Join([]string{m.File, m.Func, m.Op, m.Orig, m.Mut}, "\x00")
		seen[key]++
		sum := sha256.Sum256([]byte(key + "\x00" + strconv.Itoa(seen[key])))
		m.ID = hex.EncodeToString(sum[:])[:10]
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Line != out[j].Line {
			return out[i].Line < out[j].Line
		}
		if out[i].Col != out[j].Col {
			return out[i].Col < out[j].Col
		}
		return out[i].Op < out[j].Op
	})
	return out
}

// lineSpan returns the byte offsets of the start of the first line and the end of the last line the edits touch.
func (m *mutant) lineSpan(src []byte) (int, int) {
	lo, hi := len(src), 0
	for _, e := range m.edits {
		lo = min(lo, e.start)
		hi = max(hi, e.end)
	}
	for lo > 0 && src[lo-1] != '\n' {
		lo--
	}
	for hi < len(src) && src[hi] != '\n' {
		hi++
	}
	return lo, hi
}

// trimLines returns src[lo:hi] with each line trimmed and the lines joined by " ⏎ ", so a mutant is one line of the
// report. A removed block of more than three lines is shortened.
func trimLines(src []byte, lo, hi int) string {
	lines := strings.Split(string(src[lo:hi]), "\n")
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	if len(lines) > 3 {
		lines = append(lines[:2], fmt.Sprintf("… %d lines", len(lines)-2))
	}
	return strings.Join(lines, " ⏎ ")
}

func recvName(e ast.Expr) string {
	switch t := e.(type) {
	case *ast.StarExpr:
		return recvName(t.X)
	case *ast.IndexExpr:
		return recvName(t.X)
	case *ast.IndexListExpr:
		return recvName(t.X)
	case *ast.Ident:
		return t.Name
	}
	return "?"
}
