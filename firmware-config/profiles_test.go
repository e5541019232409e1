package firmwareconfig

import (
	"bufio"
	"bytes"
	"encoding"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// Every profile is decoded strictly on top of the default and validates.
// The files it names need not exist: validation reads none.
func TestProfilesValid(t *testing.T) {
	for _, kind := range Kinds {
		t.Run(kind, func(t *testing.T) {
			doc, err := Profile(kind)
			if err != nil {
				t.Fatalf("no profile for kind %s: %v", kind, err)
			}
			c, err := Parse(kind+".toml", doc)
			if err != nil {
				t.Fatalf("profile does not validate:\n%v", err)
			}
			if c.Kind != kind {
				t.Errorf("kind = %q, want %q", c.Kind, kind)
			}
			// A profile rolled out to a store talks to the central.
			if !c.Sync.Enabled || !strings.HasPrefix(c.Sync.Broker, "ssl://") || c.Sync.CertFile == "" {
				t.Errorf("sync: want TLS with a client certificate, got enabled=%v broker=%q", c.Sync.Enabled, c.Sync.Broker)
			}
			if c.Agent.TenantKeyFile == "" {
				t.Error("agent.tenant_key_file: a synced agent needs the tenant's key, not a generated one")
			}
		})
	}
}

// What each kind is for (README.md's first table).
func TestProfilesShape(t *testing.T) {
	load := func(t *testing.T, kind string) *Config {
		t.Helper()
		doc, err := Profile(kind)
		if err != nil {
			t.Fatal(err)
		}
		c, err := Parse(kind+".toml", doc)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	tests := []struct {
		kind     string
		scanners int
		bus      string // "" when off
		tcpAPI   bool
	}{
		{kind: "pos", scanners: 1, tcpAPI: true},
		{kind: "kiosk", scanners: 1, tcpAPI: true},
		{kind: "speaker", bus: "external"},
		{kind: "gateway", bus: "embedded"},
	}
	for _, tc := range tests {
		t.Run(tc.kind, func(t *testing.T) {
			c := load(t, tc.kind)
			if len(c.Scanners) != tc.scanners {
				t.Errorf("%d scanners, want %d", len(c.Scanners), tc.scanners)
			}
			for _, s := range c.Scanners {
				if s.Use != "identify" || s.Purpose != "loyalty" || s.Scanner().Debounce == 0 {
					t.Errorf("scanner %s: use %q purpose %q debounce %s", s.Name, s.Use, s.Purpose, s.Scanner().Debounce.String())
				}
			}
			bus := ""
			if c.Bus.Enabled {
				bus = c.Bus.Mode
			}
			if bus != tc.bus {
				t.Errorf("bus %q, want %q", bus, tc.bus)
			}
			if got := c.API.Listen != ""; got != tc.tcpAPI {
				t.Errorf("api.listen %q", c.API.Listen)
			}
			if tc.tcpAPI && c.API.TokenFile == "" {
				t.Error("api.token_file: the POS or kiosk software's API needs a token")
			}
			if c.APIConfig("/state").Socket == "" {
				t.Error("api.socket: storectl needs the socket")
			}
		})
	}
	small, big := load(t, "speaker"), load(t, "gateway")
	if small.Agent.MaxProfiles >= big.Agent.MaxProfiles || small.Store.Outbox.MaxMB >= big.Store.Outbox.MaxMB ||
		big.Store.Outbox.MaxRecords <= Default().Store.Outbox.MaxRecords {
		t.Error("the speaker's bounds should be the tightest, the gateway's the largest")
	}
	for _, d := range big.Bus.Devices {
		if d.Username == "" || (d.PasswordFile == "") == (d.PasswordEnv == "") {
			t.Errorf("gateway device %s: want its own username and one password source", d.ID)
		}
		if !slices.Contains(big.Ident.DeviceIDs, d.ID) {
			t.Errorf("gateway device %s is not in identifiers.device_ids", d.ID)
		}
	}
}

var (
	// secretKey is a key name that holds or names a secret.
	secretKey = regexp.MustCompile(`(?i)(password|passwd|token|secret|key|credential)`)
	// longHex or long base64 in a value looks like key material.
	keyMaterial = regexp.MustCompile(`[0-9A-Fa-f]{32,}|[A-Za-z0-9+/]{40,}={0,2}`)
)

// A profile names secrets by path (*_file, or a file list) or by an
// environment variable (*_env), never writes one. Commented-out lines are
// checked too: a technician uncomments them.
func TestProfilesNoInlineSecret(t *testing.T) {
	for _, kind := range Kinds {
		t.Run(kind, func(t *testing.T) {
			doc, err := Profile(kind)
			if err != nil {
				t.Fatal(err)
			}
			for n, line := range lines(doc) {
				checkSecretLine(t, kind+".toml", n+1, line)
			}
		})
	}
}

func TestNoInlineSecretCatches(t *testing.T) {
	bad := []string{`password = "hunter2"`, `token = "abc"`, `# api_key = "x"`, `secret_file = "sk_` + strings.Repeat("a1", 20) + `"`}
	for _, line := range bad {
		ft := &fakeT{}
		checkSecretLine(ft, "x.toml", 1, line)
		if !ft.failed {
			t.Errorf("%q passed", line)
		}
	}
}

type fakeT struct {
	testing.TB
	failed bool
}

func (f *fakeT) Helper()               {}
func (f *fakeT) Errorf(string, ...any) { f.failed = true }

func checkSecretLine(t testing.TB, file string, n int, line string) {
	t.Helper()
	key, value, ok := strings.Cut(strings.TrimLeft(line, "# "), "=")
	if !ok {
		return
	}
	key, value = strings.Trim(strings.TrimSpace(key), `"`), strings.TrimSpace(value)
	if strings.Contains(key, " ") {
		return // prose in a comment, not a key
	}
	if keyMaterial.MatchString(value) {
		t.Errorf("%s:%d: %s: the value looks like key material", file, n, key)
	}
	if !secretKey.MatchString(key) {
		return
	}
	switch {
	case strings.HasSuffix(key, "_file"), strings.HasSuffix(key, "_env"):
		if v, _, _ := strings.Cut(value, "#"); strings.HasSuffix(key, "_file") && !isPathValue(strings.TrimSpace(v)) {
			t.Errorf("%s:%d: %s = %s: want an absolute path", file, n, key, v)
		}
	case key == "central_keys": // public keys, by path
		if !strings.HasPrefix(value, `["/`) {
			t.Errorf("%s:%d: central_keys: want paths of PEM files", file, n)
		}
	default:
		t.Errorf("%s:%d: %s: a secret must be a *_file path or a *_env name, never inline", file, n, key)
	}
}

func isPathValue(v string) bool {
	s, err := strconv.Unquote(v)
	return err == nil && (s == "" || filepath.IsAbs(s))
}

func lines(doc []byte) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(doc))
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

// Every key of the schema has a row in README.md's tables, and every row
// names a key of the schema: a new key is documented before it ships, and
// the README never documents a key the decoder would refuse.
func TestReadmeDocumentsSchema(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	schema := map[string]bool{}
	schemaKeys(reflect.TypeFor[Config](), "", schema)
	documented := readmeKeys(readme)
	if len(documented) < 50 {
		t.Fatalf("found only %d keys in README.md's tables: has their format changed?", len(documented))
	}
	for _, k := range sortedKeys(schema) {
		if !documented[k] {
			t.Errorf("%s is in the schema but has no row in firmware-config/README.md: document it", k)
		}
	}
	for _, k := range sortedKeys(documented) {
		if !schema[k] {
			t.Errorf("README.md documents %s, which the schema does not have", k)
		}
	}
}

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

// schemaKeys adds the dotted TOML key of every leaf of t under prefix. An
// array of tables contributes its fields under its own name
// (scanner.baud), as README.md's sections do.
func schemaKeys(t reflect.Type, prefix string, out map[string]bool) {
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		key := name
		if prefix != "" {
			key = prefix + "." + name
		}
		ft := f.Type
		if ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct && !reflect.PointerTo(ft).Implements(textUnmarshaler) {
			schemaKeys(ft, key, out)
			continue
		}
		out[key] = true
	}
}

var (
	// A section heading names its table: ### `[store.outbox]`, ### `[[scanner]]`.
	sectionHeading = regexp.MustCompile("^#{2,4} `\\[\\[?([a-z_.]+)\\]\\]?`")
	topHeading     = regexp.MustCompile(`^#{2,4} Top level`)
	keyRow         = regexp.MustCompile("^\\| `([a-z_]+)` \\|")
)

// readmeKeys returns the dotted keys of the rows of README.md's key tables:
// the tables whose first column is "key", under a section heading.
func readmeKeys(doc []byte) map[string]bool {
	out := map[string]bool{}
	section, inSection, inKeyTable := "", false, false
	for _, line := range lines(doc) {
		switch {
		case topHeading.MatchString(line):
			section, inSection = "", true
		case sectionHeading.MatchString(line):
			section, inSection = sectionHeading.FindStringSubmatch(line)[1], true
		case strings.HasPrefix(line, "#"):
			inSection = false
		case strings.HasPrefix(line, "| key |"):
			inKeyTable = inSection
		case !strings.HasPrefix(line, "|"):
			inKeyTable = false
		case inKeyTable:
			if m := keyRow.FindStringSubmatch(line); m != nil {
				key := m[1]
				if section != "" {
					key = section + "." + key
				}
				out[key] = true
			}
		}
	}
	return out
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// fileRef is a file name a message or a comment points a reader at.
var fileRef = regexp.MustCompile(`[A-Za-z0-9_./-]*[A-Za-z0-9_-]\.(?:md|toml)\b`)

// The files the package's error messages and the default's comments point
// at exist: a hint that names a missing file sends a technician nowhere.
// Names are tried beside this package and from the repository root.
func TestHintsPointAtFiles(t *testing.T) {
	refs := map[string][]string{} // file name -> where it is mentioned
	fset := token.NewFileSet()
	goFiles, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range goFiles {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				for _, ref := range fileRef.FindAllString(lit.Value, -1) {
					refs[ref] = append(refs[ref], fset.Position(lit.Pos()).String())
				}
			}
			return true
		})
	}
	for _, name := range []string{"default.toml", "README.md"} {
		doc, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for n, line := range lines(doc) {
			for _, ref := range fileRef.FindAllString(line, -1) {
				refs[ref] = append(refs[ref], name+":"+strconv.Itoa(n+1))
			}
		}
	}
	for _, must := range []string{"firmware-config/README.md", "pos.toml", "gateway.toml"} {
		if refs[must] == nil {
			t.Errorf("no hint mentions %s any more: update this test", must)
		}
	}
	// Documents kept beside the repository (shared/), not in it.
	outside := map[string]bool{"DESIGN.md": true, "PROTOCOL.md": true}
	for _, ref := range sortedKeys(keysOf(refs)) {
		if outside[ref] || strings.HasPrefix(ref, "/") {
			continue // an absolute path is a deployment path, not a repository file
		}
		if !exists(ref) && !exists(filepath.Join("..", ref)) {
			t.Errorf("%s points at %s, which does not exist", strings.Join(refs[ref], ", "), ref)
		}
	}
}

func keysOf(m map[string][]string) map[string]bool {
	out := make(map[string]bool, len(m))
	for k := range m {
		out[k] = true
	}
	return out
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
