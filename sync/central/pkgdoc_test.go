package central

import (
	"go/parser"
	"go/token"
	"strings"
	"testing"
)

// TestPackageDoc fails when the package loses its doc comment, which says
// what the package owns, what it must never do and what its tests protect.
func TestPackageDoc(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "doc.go", nil, parser.ParseComments|parser.PackageClauseOnly)
	if err != nil {
		t.Fatal(err)
	}
	if f.Doc == nil || !strings.HasPrefix(f.Doc.Text(), "Package central ") {
		t.Fatal("doc.go has no package doc starting with \"Package central \"")
	}
}
