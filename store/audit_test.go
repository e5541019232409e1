package store_test

import (
	"fmt"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/storeagent/storeagent/store"
	"github.com/storeagent/storeagent/store/storetest"
)

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := cbor.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAuditLogAppendOnlyAndBounded(t *testing.T) {
	db := storetest.Open(t, store.Options{AuditMax: 5})
	for i := range 8 {
		err := db.Update(func(tx *store.Tx) error {
			return tx.Audit("rights.erase", map[string]string{"seq": fmt.Sprint(i)})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	log, err := db.AuditLog(0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != 5 || log[0].Seq != 4 || log[4].Fields["seq"] != "7" || log[0].Kind != "rights.erase" || log[0].At == 0 {
		t.Fatalf("audit log %+v", log)
	}
	// A rolled-back transaction leaves no audit line.
	db.Update(func(tx *store.Tx) error {
		tx.Audit("never", nil)
		return fmt.Errorf("abort")
	})
	if log, _ := db.AuditLog(0, 100); log[len(log)-1].Kind == "never" {
		t.Fatal("audit line of an aborted transaction kept")
	}
}
