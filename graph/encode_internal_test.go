package graph

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// encodeResponse writes what json.Marshal writes, whether it takes the path for data alone or
// not.
func TestEncodeResponseMatchesJSONMarshal(t *testing.T) {
	yes := true
	for name, r := range map[string]*graphql.Response{
		"data":        {Data: json.RawMessage(`{"appendEvents":{"nextExpectedVersion":1,"data":{"n":[1,2.5,"x"]}}}`)},
		"spaced":      {Data: json.RawMessage(`{"event":{"data":{"big": 12345678901234567890, "items": [{"qty": 2}]}}}`)},
		"html":        {Data: json.RawMessage(`{"note":"<b>&</b> \u2028"}`)},
		"null data":   {},
		"errors":      {Errors: gqlerror.List{{Message: "no", Extensions: map[string]any{"code": "BAD_USER_INPUT"}}}, Data: json.RawMessage(`null`)},
		"extensions":  {Data: json.RawMessage(`{"a":1}`), Extensions: map[string]any{"cost": 3}},
		"incremental": {Data: json.RawMessage(`{"a":1}`), Label: "l", HasNext: &yes},
	} {
		want, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if got := encodeResponse(r); !bytes.Equal(got, want) {
			t.Errorf("%s: encodeResponse wrote %s, json.Marshal %s", name, got, want)
		}
	}
	// Data that is not JSON is an internal error, as json.Marshal's failure is.
	if got := encodeResponse(&graphql.Response{Data: json.RawMessage(`{"a":`)}); !bytes.Contains(got, []byte(CodeInternal)) {
		t.Errorf("encodeResponse of data that is not JSON wrote %s", got)
	}
	if got, want := dataOnly(&graphql.Response{Data: json.RawMessage(`{}`)}), true; got != want {
		t.Errorf("dataOnly of a response with data alone = %v", got)
	}
}
