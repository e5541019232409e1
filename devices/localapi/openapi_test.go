package localapi

import (
	"bufio"
	"go/parser"
	"go/token"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// openAPIRoutes reads "METHOD /path" for every operation of openapi.yaml's
// paths. The file keeps the usual layout: a path two spaces in, its
// operations four spaces in.
func openAPIRoutes(t *testing.T) []string {
	t.Helper()
	f, err := os.Open("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pathLine := regexp.MustCompile(`^  (/\S*):\s*$`)
	opLine := regexp.MustCompile(`^    (get|put|post|delete|options|head|patch|trace):\s*$`)
	var out []string
	in, path := false, ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "paths:":
			in = true
		case in && line != "" && !strings.HasPrefix(line, " "):
			in = false
		case !in:
		case pathLine.MatchString(line):
			path = pathLine.FindStringSubmatch(line)[1]
		case opLine.MatchString(line):
			out = append(out, strings.ToUpper(opLine.FindStringSubmatch(line)[1])+" "+path)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// TestOpenAPIMatchesRoutes fails when a route of the handler table is not
// documented in openapi.yaml, or the file documents a route that is not
// served.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var served []string
	for _, rt := range routes {
		served = append(served, rt.method+" "+rt.path)
	}
	slices.Sort(served)
	documented := openAPIRoutes(t)
	for _, r := range served {
		if !slices.Contains(documented, r) {
			t.Errorf("route %s is served but not in openapi.yaml", r)
		}
	}
	for _, r := range documented {
		if !slices.Contains(served, r) {
			t.Errorf("openapi.yaml documents %s, which is not served", r)
		}
	}
	if len(documented) == 0 {
		t.Fatal("no routes read from openapi.yaml")
	}
}

// TestOpenAPIListsEveryCode fails when an error code is missing from the
// Error schema of openapi.yaml.
func TestOpenAPIListsEveryCode(t *testing.T) {
	b, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range codes {
		if !strings.Contains(string(b), "            - "+c+"\n") {
			t.Errorf("code %s is not in the Error schema's enum", c)
		}
	}
}

// TestPackageDoc fails when the package loses its doc comment, which says
// what the package owns and must never do.
func TestPackageDoc(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "doc.go", nil, parser.ParseComments|parser.PackageClauseOnly)
	if err != nil {
		t.Fatal(err)
	}
	if f.Doc == nil || !strings.HasPrefix(f.Doc.Text(), "Package localapi ") {
		t.Fatal(`doc.go has no package doc starting with "Package localapi "`)
	}
}
