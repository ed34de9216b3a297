package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"

	"github.com/strata-es/strata/internal/store/eventstore"
)

// GraphQLAppender appends through the server's GraphQL API: one HTTP POST of appendEvents per
// append, over keep-alive connections, as a backend client would.
type GraphQLAppender struct {
	URL    string // the server's base, http://host:port
	Client *http.Client
}

const appendEventsMutation = `mutation Append($s: String!, $v: Int, $e: [EventInput!]!) {
  appendEvents(streamId: $s, expectedVersion: $v, events: $e) { nextExpectedVersion }
}`

// Append posts one appendEvents; a WRONG_EXPECTED_VERSION answer comes back as a
// *eventstore.WrongExpectedVersionError, as the store would return it.
func (g GraphQLAppender) Append(ctx context.Context, streamID string, expected eventstore.ExpectedVersion, events []eventstore.EventData) (eventstore.AppendResult, error) {
	type input struct {
		Type string          `json:"type"`
		Data json.RawMessage `json:"data"`
	}
	in := make([]input, len(events))
	for i, e := range events {
		in[i] = input{Type: e.Type, Data: e.Data}
	}
	vars := map[string]any{"s": streamID, "e": in}
	if v, ok := expected.Value(); ok {
		vars["v"] = v
	}
	a, status, raw, err := postGraphQL(ctx, g.Client, g.URL, appendEventsMutation, vars)
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	var data struct {
		AppendEvents *struct {
			NextExpectedVersion int64 `json:"nextExpectedVersion"`
		} `json:"appendEvents"`
	}
	if len(a.Data) > 0 {
		if err := json.Unmarshal(a.Data, &data); err != nil {
			return eventstore.AppendResult{}, fmt.Errorf("HTTP %d: %.200s", status, raw)
		}
	}
	switch {
	case len(a.Errors) > 0 && a.Errors[0].Extensions.Code == "WRONG_EXPECTED_VERSION":
		x := a.Errors[0].Extensions
		return eventstore.AppendResult{}, &eventstore.WrongExpectedVersionError{StreamID: streamID, Expected: x.ExpectedVersion, Actual: x.ActualVersion}
	case len(a.Errors) > 0:
		return eventstore.AppendResult{}, fmt.Errorf("%s: %s", a.Errors[0].Extensions.Code, a.Errors[0].Message)
	case data.AppendEvents == nil:
		return eventstore.AppendResult{}, fmt.Errorf("HTTP %d: no result: %.200s", status, raw)
	}
	return eventstore.AppendResult{StreamID: streamID, NextExpectedVersion: data.AppendEvents.NextExpectedVersion}, nil
}

// gqlAnswer is a GraphQL answer: its data, and its errors with the extensions the benchmarks
// read.
type gqlAnswer struct {
	Data   json.RawMessage `json:"data"`
	Errors []struct {
		Message    string `json:"message"`
		Extensions struct {
			Code            string `json:"code"`
			ActualVersion   int64  `json:"actualVersion"`
			ExpectedVersion int64  `json:"expectedVersion"`
		} `json:"extensions"`
	} `json:"errors"`
}

// postGraphQL posts query with vars to the server at url (http://host:port) through client and
// returns its answer, with the HTTP status and the body as it came for messages. A body that is
// not a GraphQL answer is an error quoting it.
func postGraphQL(ctx context.Context, client *http.Client, url, query string, vars map[string]any) (a gqlAnswer, status int, raw []byte, err error) {
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		return a, 0, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/query", bytes.NewReader(body))
	if err != nil {
		return a, 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return a, 0, nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	if raw, err = io.ReadAll(resp.Body); err != nil {
		return a, resp.StatusCode, nil, err
	}
	if err := json.Unmarshal(raw, &a); err != nil {
		return a, resp.StatusCode, raw, fmt.Errorf("HTTP %d: %.200s", resp.StatusCode, raw)
	}
	return a, resp.StatusCode, raw, nil
}

// RoundRobin spreads appends over several appenders (the replicas of one deployment), one after
// the other, starting with the first. Each RoundRobin keeps its own turn, so that two of them
// (two benchmarks in one process, say) do not skew each other's spread. It is safe for
// concurrent use; make one with NewRoundRobin.
type RoundRobin struct {
	appenders []Appender
	turns     atomic.Uint64 // appends passed on so far
}

// NewRoundRobin returns a RoundRobin over appenders, of which there must be at least one.
func NewRoundRobin(appenders ...Appender) *RoundRobin {
	return &RoundRobin{appenders: appenders}
}

// Append appends through the next appender in turn.
func (r *RoundRobin) Append(ctx context.Context, streamID string, expected eventstore.ExpectedVersion, events []eventstore.EventData) (eventstore.AppendResult, error) {
	turn := r.turns.Add(1) - 1
	return r.appenders[turn%uint64(len(r.appenders))].Append(ctx, streamID, expected, events)
}
