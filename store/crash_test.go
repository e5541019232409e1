package store_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/storeagent/storeagent/store"
	"github.com/storeagent/storeagent/store/storetest"
)

const (
	crashChildEnv = "STORE_CRASH_CHILD_DB"
	crashKeyEnv   = "STORE_CRASH_CHILD_KEY"
	crashRounds   = 50
	crashWorkers  = 8
)

// crashPayload is what worker w appends as its i-th record in round r: the
// parent recomputes it to check the record is intact.
func crashPayload(r, w, i int) []byte {
	head := fmt.Sprintf("round=%d worker=%d i=%d|", r, w, i)
	return append([]byte(head), bytes.Repeat([]byte{byte('a' + (r+w+i)%26)}, 200)...)
}

// TestMain turns the test binary into the crash test's child when the
// parent says so in the environment.
func TestMain(m *testing.M) {
	if path := os.Getenv(crashChildEnv); path != "" {
		crashChild(path)
	}
	os.Exit(m.Run())
}

// crashChild appends as fast as it can from several goroutines and prints
// "seq round worker i" for every acknowledged append, until it is killed.
func crashChild(path string) {
	key, _ := hex.DecodeString(os.Getenv(crashKeyEnv))
	var round int
	fmt.Sscan(os.Getenv("STORE_CRASH_ROUND"), &round)
	db, err := store.Open(path, store.Options{Key: key, Outbox: store.OutboxLimits{MaxRecords: 10_000_000, MaxBytes: 8 << 30}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		os.Exit(3)
	}
	var mu sync.Mutex
	for w := range crashWorkers {
		go func() {
			for i := 0; ; i++ {
				class := store.Critical
				if i%3 == 0 {
					class = store.Telemetry
				}
				seq, err := db.Append(context.Background(), store.Entry{Class: class, Payload: crashPayload(round, w, i)})
				if err != nil {
					fmt.Fprintln(os.Stderr, "child append:", err)
					os.Exit(4)
				}
				line := fmt.Sprintf("%d %d %d %d\n", seq, round, w, i)
				mu.Lock()
				os.Stdout.WriteString(line) // unbuffered: a printed ack is a real ack
				mu.Unlock()
			}
		}()
	}
	select {}
}

type ack struct{ round, worker, i int }

// TestCrashDurability kills a real appending process with SIGKILL at random
// moments. After every kill, every append the child acknowledged is in the
// file and intact, no sequence number was given twice, new sequence numbers
// are above everything the file held before, and bbolt's check passes.
func TestCrashDurability(t *testing.T) {
	key := storetest.Key(t)
	path := filepath.Join(t.TempDir(), "crash.db")
	acked := map[uint64]ack{}
	var highWater uint64 // highest sequence in the file at the last reopen
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	total := 0
	for round := range crashRounds {
		got := runCrashChild(t, path, key, round, time.Duration(20+rng.IntN(200))*time.Millisecond)
		for seq, a := range got {
			if prev, dup := acked[seq]; dup {
				t.Fatalf("round %d: sequence %d acknowledged twice (%v and %v)", round, seq, prev, a)
			}
			if seq <= highWater {
				t.Fatalf("round %d: sequence %d not above %d, the file's last before this round", round, seq, highWater)
			}
			acked[seq] = a
		}
		total += len(got)
		highWater = verifyCrashFile(t, path, key, acked)
	}
	t.Logf("%d rounds, %d acknowledged appends, all present and intact", crashRounds, total)
}

// runCrashChild starts the child, lets it append for about d after its first
// acknowledgement, kills it with SIGKILL and returns what it acknowledged.
func runCrashChild(t *testing.T, path string, key []byte, round int, d time.Duration) map[uint64]ack {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path, crashKeyEnv+"="+hex.EncodeToString(key), fmt.Sprint("STORE_CRASH_ROUND=", round))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	got := map[uint64]ack{}
	first := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var seq uint64
			var a ack
			if n, _ := fmt.Sscan(sc.Text(), &seq, &a.round, &a.worker, &a.i); n == 4 {
				if len(got) == 0 {
					close(first)
				}
				got[seq] = a
			}
		}
	}()
	select {
	case <-first:
	case <-done:
	case <-time.After(30 * time.Second):
	}
	time.Sleep(d)
	cmd.Process.Signal(syscall.SIGKILL)
	<-done
	cmd.Wait()
	if len(got) == 0 {
		t.Fatalf("round %d: child acknowledged nothing; stderr: %s", round, stderr.String())
	}
	return got
}

// verifyCrashFile reopens the file as the daemon would and checks every
// acknowledged record. It returns the file's last sequence number.
func verifyCrashFile(t *testing.T, path string, key []byte, acked map[uint64]ack) uint64 {
	t.Helper()
	db, err := store.Open(path, store.Options{Key: key, Outbox: store.OutboxLimits{MaxRecords: 10_000_000, MaxBytes: 8 << 30}})
	if err != nil {
		t.Fatalf("reopen after kill: %v", err)
	}
	defer db.Close()
	if err := db.Check(); err != nil {
		t.Fatalf("consistency check after kill: %v", err)
	}
	err = db.View(func(tx *store.Tx) error {
		for seq, a := range acked {
			r, ok, err := tx.OutboxRecord(seq)
			if err != nil || !ok {
				return fmt.Errorf("acknowledged sequence %d (%v) missing: ok=%v err=%v", seq, a, ok, err)
			}
			if want := crashPayload(a.round, a.worker, a.i); !bytes.Equal(r.Payload, want) {
				return fmt.Errorf("acknowledged sequence %d damaged", seq)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	st, err := db.OutboxStats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Records() < uint64(len(acked)) {
		t.Fatalf("counters say %d records, %d were acknowledged", st.Records(), len(acked))
	}
	return st.LastSeq
}
