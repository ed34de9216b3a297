package readmodel_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/strata-es/strata/internal/domain"
	"github.com/strata-es/strata/internal/domain/user"
	"github.com/strata-es/strata/internal/runtime/aggregates"
	"github.com/strata-es/strata/internal/store/readmodel"
	"github.com/strata-es/strata/internal/testsupport/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// Every registered read model fits the table its migration made; a declaration that asks for a
// column the table lacks, or a table that is not there, is named in the error.
func TestCheckNamesWhatATableLacks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.Pool(t)
	for _, m := range readmodel.All(aggregates.All()) {
		if err := m.Check(ctx, pool); err != nil {
			t.Errorf("%s: %v", m.Name(), err)
		}
	}
	def := user.Definition()
	rm := *def.ReadModel
	rm.Columns = append(rm.Columns[:len(rm.Columns):len(rm.Columns)], domain.Column{Name: "nickname", Field: "Nickname"})
	def.ReadModel = &rm
	m, _ := readmodel.Of(def)
	if err := m.Check(ctx, pool); !errors.Is(err, readmodel.ErrMismatch) || !strings.Contains(err.Error(), "nickname") {
		t.Errorf("a declared column the table lacks: %v", err)
	}
	rm2 := *def.ReadModel
	rm2.Table = "people"
	def.ReadModel = &rm2
	m, _ = readmodel.Of(def)
	if err := m.Check(ctx, pool); !errors.Is(err, readmodel.ErrMismatch) || !strings.Contains(err.Error(), "no table people") {
		t.Errorf("a table that is not there: %v", err)
	}
}
