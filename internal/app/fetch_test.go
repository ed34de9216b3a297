package app

import (
	"io"
	"net/http"
	"testing"
	"time"
)

// testHTTP is the tests' client for requests that end: a server that never answers fails the
// test that asked, by name, within two minutes, instead of holding the package until -timeout.
var testHTTP = &http.Client{Timeout: 2 * time.Minute} //nolint:gochecknoglobals // one client, as http.DefaultClient

// fetch sends req through client and returns the response, whose body is closed, and the body
// read whole; it fails t if either fails.
func fetch(t *testing.T, client *http.Client, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}
