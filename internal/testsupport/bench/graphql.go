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
	body, err := json.Marshal(map[string]any{"query": appendEventsMutation, "variables": vars})
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.URL+"/query", bytes.NewReader(body))
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := g.Client.Do(req)
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	var r struct {
		Data struct {
			AppendEvents *struct {
				NextExpectedVersion int64 `json:"nextExpectedVersion"`
			} `json:"appendEvents"`
		} `json:"data"`
		Errors []struct {
			Message    string `json:"message"`
			Extensions struct {
				Code            string `json:"code"`
				ActualVersion   int64  `json:"actualVersion"`
				ExpectedVersion int64  `json:"expectedVersion"`
			} `json:"extensions"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("HTTP %d: %.200s", resp.StatusCode, raw)
	}
	switch {
	case len(r.Errors) > 0 && r.Errors[0].Extensions.Code == "WRONG_EXPECTED_VERSION":
		x := r.Errors[0].Extensions
		return eventstore.AppendResult{}, &eventstore.WrongExpectedVersionError{StreamID: streamID, Expected: x.ExpectedVersion, Actual: x.ActualVersion}
	case len(r.Errors) > 0:
		return eventstore.AppendResult{}, fmt.Errorf("%s: %s", r.Errors[0].Extensions.Code, r.Errors[0].Message)
	case r.Data.AppendEvents == nil:
		return eventstore.AppendResult{}, fmt.Errorf("HTTP %d: no result: %.200s", resp.StatusCode, raw)
	}
	return eventstore.AppendResult{StreamID: streamID, NextExpectedVersion: r.Data.AppendEvents.NextExpectedVersion}, nil
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
