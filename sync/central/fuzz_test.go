package central

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/storeagent/storeagent/agent/event"
	"github.com/storeagent/storeagent/sync/wire"
)

// The fuzz targets cover every decoder of outside input here: the records
// and frames of the data files (a file may be damaged or edited) and the
// control API's JSON bodies. Seeds live in testdata/fuzz/FuzzXxx;
// go test -run TestFuzzSeeds -update rewrites them.

var update = flag.Bool("update", false, "rewrite the fuzz seed corpora in testdata/fuzz")

func FuzzDecodeJournalRecord(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := decodeJournalRecord(data)
		if err != nil {
			return
		}
		b, err := encodeRecord(&r)
		if err != nil {
			t.Fatalf("an accepted record does not encode: %v", err)
		}
		r2, err := decodeJournalRecord(b)
		if err != nil || !reflect.DeepEqual(r, r2) {
			t.Fatalf("re-encoding changes the record: %v", err)
		}
		st := newUplinkState()
		st.apply(&r) // must not panic
		if r.Type == recBatch {
			eventsOf(&r, func(ReceivedEvent) error { return nil })
		}
	})
}

func FuzzDecodeChangeRecord(f *testing.F) {
	v := testVerifier(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := decodeChangeRecord(data)
		if err != nil {
			return
		}
		b, err := encodeRecord(&r)
		if err != nil {
			t.Fatalf("an accepted record does not encode: %v", err)
		}
		if r2, err := decodeChangeRecord(b); err != nil || !reflect.DeepEqual(r, r2) {
			t.Fatalf("re-encoding changes the record: %v", err)
		}
		wire.VerifyChange(v, wire.Scope{Tenant: testTenant, Store: testStore}, r.Signed)
	})
}

func FuzzScanFrames(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		var frames [][]byte
		res, err := scanFrames(bytes.NewReader(data), int64(len(data)), magicJournal, func(_ int64, p []byte) error {
			frames = append(frames, bytes.Clone(p))
			return nil
		})
		if err != nil {
			return
		}
		if res.end+res.torn != int64(len(data)) {
			t.Fatalf("end %d + torn %d != size %d", res.end, res.torn, len(data))
		}
		if res.end == 0 {
			return
		}
		out := []byte(magicJournal)
		for _, p := range frames {
			out = appendFrame(out, p)
		}
		if !bytes.Equal(out, data[:res.end]) {
			t.Fatal("the good frames do not rebuild the file's prefix")
		}
	})
}

func FuzzChangeRequest(f *testing.F) {
	c, err := New(testConfig(f, "", f.TempDir(), 100))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { c.Close() })
	f.Fuzz(func(t *testing.T, data []byte) {
		var req ChangeRequest
		if err := decodeRequest(bytes.NewReader(data), &req); err != nil {
			return
		}
		_, body, err := c.BuildChange(req)
		if err != nil {
			return
		}
		if _, err := wire.EncodeChange(wire.Change{Seq: 1, Body: body}); err != nil && !strings.Contains(err.Error(), "too large") {
			t.Fatalf("a built change does not encode: %v", err)
		}
	})
}

// seeds returns the generated seed inputs of each target.
func seeds(t testing.TB) map[string][][]byte {
	e := events("pos-1", 2)
	e[0].MessageID, e[1].MessageID = "01890a5d-ac96-774b-bcce-b302099a8057", "01890a5d-ac96-774b-bcce-b302099a8058"
	e[0].OriginalTimestamp, e[1].OriginalTimestamp = 1767225600000, 1767225600001
	batch := must(wire.EncodeEventBatch(wire.EventBatch{Agent: "pos-1", Store: testStore, First: 1, Last: 3, SentAt: 1767225600002, Events: e}))
	id0, _ := event.ParseID(e[0].MessageID)
	id1, _ := event.ParseID(e[1].MessageID)
	status := &StatusReport{Online: true, At: 1767225600000, Version: "1.0.0", Outbox: 3, Cursor: 9}
	base := journalRecord{At: 1767225600000, Store: testStore, Agent: "pos-1"}
	var journal [][]byte
	for _, r := range []journalRecord{
		{Type: recBatch, First: 1, Last: 3, Events: 2, New: append(id0[:], id1[:]...), Batch: batch},
		{Type: recBatch, First: 1, Last: 3, Events: 2, New: id1[:], Dups: 1, OutOfOrder: 1},
		{Type: recGap, First: 7, Last: 9, Prev: 3},
		{Type: recInvalid, Reason: reasonMalformed},
		{Type: recStatus, Status: status},
		{Type: recSync, From: 1},
	} {
		r.At, r.Store, r.Agent = base.At, base.Store, base.Agent
		journal = append(journal, must(encodeRecord(&r)))
	}
	journal = append(journal, journal[0][:40], must(encodeRecord(&journalRecord{Type: recInvalid, At: 1, Reason: reasonBadTopic})))

	signer := must(wire.NewSigner(testKey("central")))
	signed := must(wire.SignChange(signer, wire.Scope{Tenant: testTenant, Store: testStore},
		wire.Change{Seq: 2, Body: &wire.EraseChange{Profile: ProfileID(1)}}))
	change := must(encodeRecord(&changeRecord{Seq: 2, Kind: wire.KindErase, At: 1767225600000, Signed: signed}))

	file := appendFrame(appendFrame([]byte(magicJournal), journal[0]), journal[2])
	frames := [][]byte{file, file[:len(file)-5], append(bytes.Clone(file), make([]byte, 12)...), []byte(magicJournal), {}}

	requests := [][]byte{
		[]byte(`{"kind":"erase","profile":"c00000001"}`),
		[]byte(`{"store":"s2","kind":"restrict","customer":3,"restricted":true}`),
		[]byte(`{"kind":"consent","profile":"c00000004","purposes":{"marketing":{"status":"withdrawn"},"analytics":{"status":"objected","basis":"legitimate_interest","at":1767225600000}}}`),
		[]byte(`{"kind":"profile","customer":5,"loyalty":"4111 1111 1111 1111","email":" Ana@Example.com ","attrs":[{"name":"tier","purpose":"loyalty","value":"gold"},{"name":"points","purpose":"loyalty","value":1.5e3}],"version":3}`),
		[]byte(`{"kind":"profile","profile":"p-new","idents":["` + strings.Repeat("ab", 32) + `"],"replace":true,"attrs":[{"name":"x","purpose":"y","value":{"a":[1,2,null]}}]}`),
		[]byte(`{"kind":"policy","policy":{"purposes":[{"name":"loyalty","basis":"consent"}],"events":{"Order Completed":"loyalty"}}}`),
		[]byte(`{"kind":"consent","profile":"c1","purposes":{}}`),
		[]byte(`{"kind":"erase","profile":"c00000001"} trailing`),
	}
	return map[string][][]byte{
		"FuzzDecodeJournalRecord": journal,
		"FuzzDecodeChangeRecord":  {change, change[:len(change)/2]},
		"FuzzScanFrames":          frames,
		"FuzzChangeRequest":       requests,
	}
}

// TestFuzzSeeds keeps the generated seed corpora in testdata/fuzz up to
// date: it fails when a seed is missing or stale (run with -update).
func TestFuzzSeeds(t *testing.T) {
	for target, inputs := range seeds(t) {
		for i, in := range inputs {
			path := filepath.Join("testdata", "fuzz", target, fmt.Sprintf("seed-%02d", i))
			want := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", in)
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			got, err := os.ReadFile(path)
			if err != nil || string(got) != want {
				t.Errorf("%s missing or stale: go test -run TestFuzzSeeds -update", path)
			}
		}
	}
}
