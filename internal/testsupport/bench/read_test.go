package bench

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// orderCounter is an in-memory OrderReader that counts the reads of each id; every failEvery-th
// read (0: none) fails.
type orderCounter struct {
	calls     atomic.Int64
	failEvery int64
	mu        sync.Mutex
	byID      map[string]int
}

func (o *orderCounter) ReadOrder(_ context.Context, id string) error {
	n := o.calls.Add(1)
	time.Sleep(50 * time.Microsecond) // long enough for the clients to overlap
	o.mu.Lock()
	o.byID[id]++
	o.mu.Unlock()
	if o.failEvery > 0 && n%o.failEvery == 0 {
		return errors.New("boom")
	}
	return nil
}

// With Count set, the clients together make exactly Count reads, of the ids given only.
func TestReadCountIsExact(t *testing.T) {
	t.Parallel()
	r := &orderCounter{byID: map[string]int{}}
	ids := []string{"a", "b", "c"}
	res, err := Read(t.Context(), r, ids, ReadOptions{Clients: 7, Count: 500, Duration: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Reads != 500 || r.calls.Load() != 500 || res.Errors != 0 || res.Clients != 7 {
		t.Errorf("%+v after %d calls, want exactly 500 reads by 7 clients, no errors", res, r.calls.Load())
	}
	for id := range r.byID {
		if !strings.Contains("abc", id) {
			t.Errorf("read %q, not one of %v", id, ids)
		}
	}
	if len(r.byID) != len(ids) {
		t.Errorf("read %d distinct ids of %d in 500 random picks", len(r.byID), len(ids))
	}
	if res.ReadsPerSec <= 0 || res.P50Ms <= 0 || res.P99Ms < res.P50Ms || res.MaxMs < res.P99Ms {
		t.Errorf("%+v: want reads_per_sec > 0 and 0 < p50 ≤ p99 ≤ max", res)
	}
}

// Failed reads are counted and the first failure is returned with the result.
func TestReadCountsErrors(t *testing.T) {
	t.Parallel()
	r := &orderCounter{byID: map[string]int{}, failEvery: 10}
	res, err := Read(t.Context(), r, []string{"a"}, ReadOptions{Clients: 2, Count: 100})
	if err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("err = %v, want the first failure", err)
	}
	if res.Reads != 90 || res.Errors != 10 {
		t.Errorf("%+v, want 90 reads and 10 errors", res)
	}
}

func TestReadOptionsValidate(t *testing.T) {
	t.Parallel()
	for _, o := range []ReadOptions{{Clients: 0, Count: 1}, {Clients: 1, Count: -1}, {Clients: 1}, {Clients: 10001, Count: 1}} {
		if o.Validate() == nil {
			t.Errorf("%+v validates", o)
		}
	}
	if err := (ReadOptions{Clients: 1, Duration: time.Second}).Validate(); err != nil {
		t.Error(err)
	}
}
