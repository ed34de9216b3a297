// Package metricstest reads what a metrics endpoint serves, for tests that assert exact values
// over HTTP, as Prometheus would scrape them.
package metricstest

import (
	"bufio"
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// Samples are the samples of one scrape, keyed as the text format writes them:
// name{label="value",...}, labels in name order (client_golang sorts them).
type Samples map[string]float64

// Scrape GETs url and returns its samples; anything but a 200 in the text format fails the test.
func Scrape(t testing.TB, url string) Samples {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("scrape %s: %d %s", url, resp.StatusCode, ct)
	}
	samples := Samples{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("scrape %s: malformed line %q", url, line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("scrape %s: line %q: %v", url, line, err)
		}
		samples[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	return samples
}

// Want fails the test unless every key of want was scraped with exactly its value.
func (s Samples) Want(t testing.TB, want map[string]float64) {
	t.Helper()
	for k, v := range want {
		got, ok := s[k]
		switch {
		case !ok:
			t.Errorf("%s missing", k)
		case got != v:
			t.Errorf("%s = %v, want %v", k, got, v)
		}
	}
}
