// Package aggregates registers Strata's aggregates: the one list that the runtime, stream
// lifecycle, personal data, upcasting and the API read to serve every aggregate alike. Adding an
// aggregate is one line here (docs/aggregates.md).
package aggregates

import (
	"github.com/strata-es/strata/internal/domain"
	"github.com/strata-es/strata/internal/domain/order"
	"github.com/strata-es/strata/internal/domain/product"
	"github.com/strata-es/strata/internal/domain/user"
)

// All returns every registered aggregate.
func All() []domain.Kind {
	return []domain.Kind{
		user.Definition(),
		order.Definition(),
		product.Definition(),
	}
}
