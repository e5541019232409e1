package wire

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"
)

const goldenPath = "testdata/golden.txt"

// vector is one named encoding.
type vector struct {
	name string
	b    []byte
}

// goldenVectors returns one encoding of each message, signed ones included:
// Ed25519 is deterministic, so with a fixed key the bytes are too.
func goldenVectors(t testing.TB) []vector {
	s := testSigner(t, "central")
	var out []vector
	add := func(name string, b []byte, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out = append(out, vector{name, b})
	}
	for _, c := range codecs() {
		b, err := c.encode(c.valid())
		add(c.name, b, err)
	}
	b, err := SignChange(s, testScope, sampleChanges()[1])
	add("signed-change-consent", b, err)
	b, err = SignAck(s, testScope, sampleAck())
	add("signed-ack", b, err)
	b, err = SignChangeSet(s, testScope, sampleRun())
	add("signed-change-set-run", b, err)
	return out
}

// TestGolden makes any change in encoding visible in review. Run with
// -update to rewrite testdata/golden.txt after a deliberate change.
func TestGolden(t *testing.T) {
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "# Deterministic CBOR of protocol v1 messages, hex; signed ones use the test key\n")
	fmt.Fprintf(&buf, "# %q (public key id %s). Rewrite with: go test -run TestGolden -update\n",
		"storeagent wire test key central", testSigner(t, "central").KeyID())
	for _, v := range goldenVectors(t) {
		fmt.Fprintf(&buf, "%s %s\n", v.name, hex.EncodeToString(v.b))
	}
	if *update {
		if err := os.WriteFile(goldenPath, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(goldenPath)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := diffLines(string(want), buf.String()); diff != "" {
		t.Fatalf("encoding changed; if deliberate, run with -update:\n%s", diff)
	}
}

// TestGoldenDecodes checks that the committed vectors still decode: a file
// from an older commit is what a peer of that version sends.
func TestGoldenDecodes(t *testing.T) {
	f, err := os.Open(goldenPath)
	if err != nil {
		t.Skip("no golden file yet")
	}
	defer f.Close()
	v := testVerifier(t, "central")
	decoders := map[string]func([]byte) error{}
	for _, c := range codecs() {
		decoders[c.name] = func(b []byte) error { _, err := c.decode(b); return err }
	}
	decoders["signed-change-consent"] = func(b []byte) error { _, err := VerifyChange(v, testScope, b); return err }
	decoders["signed-ack"] = func(b []byte) error { _, err := VerifyAck(v, testScope, b); return err }
	decoders["signed-change-set-run"] = func(b []byte) error { _, err := VerifyChangeSet(v, testScope, b); return err }
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, h, _ := strings.Cut(line, " ")
		b, err := hex.DecodeString(h)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if dec, ok := decoders[name]; !ok {
			t.Errorf("%s: no decoder", name)
		} else if err := dec(b); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func diffLines(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var out strings.Builder
	for i := range max(len(w), len(g)) {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			fmt.Fprintf(&out, "- %s\n+ %s\n", a, b)
		}
	}
	return out.String()
}
