// Package scalar holds the Go side of Strata's custom GraphQL scalars.
package scalar

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"

	"github.com/99designs/gqlgen/graphql"

	"github.com/strata-es/strata/internal/domain"
)

// MarshalJSON writes a stored JSON value as it is.
func MarshalJSON(v json.RawMessage) graphql.Marshaler {
	return graphql.WriterFunc(func(w io.Writer) {
		if len(v) == 0 {
			_, _ = io.WriteString(w, "null")
			return
		}
		_, _ = w.Write(v)
	})
}

// UnmarshalJSON takes a JSON value from a request (a variable or a literal) back to JSON text.
func UnmarshalJSON(v any) (json.RawMessage, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// MarshalMoney writes an amount as a decimal string with two fraction digits: "19.98".
func MarshalMoney(m domain.Money) graphql.Marshaler {
	return graphql.WriterFunc(func(w io.Writer) {
		_, _ = io.WriteString(w, strconv.Quote(m.String()))
	})
}

// UnmarshalMoney reads an amount from a decimal string. Numbers are refused, so that no float
// ever carries money.
func UnmarshalMoney(v any) (domain.Money, error) {
	s, ok := v.(string)
	if !ok {
		return 0, fmt.Errorf("%w: give money as a decimal string like \"19.98\", not %T", domain.ErrBadMoney, v)
	}
	return domain.ParseMoney(s)
}
