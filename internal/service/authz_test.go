package service_test

import (
	"testing"

	"github.com/strata-es/strata/internal/service"
	"github.com/strata-es/strata/internal/service/auth"
)

func TestAuthorizeNamesTheRoleAnOperationNeeds(t *testing.T) {
	for _, c := range []struct {
		kind string
		ops  []string
		want auth.Role
	}{
		{service.Read, []string{"order", "users"}, auth.RoleReader},
		{service.Read, nil, auth.RoleReader},
		{service.Write, []string{"createProduct"}, auth.RoleWriter},
		{service.Write, []string{"createProduct", "forgetUser"}, auth.RoleAdmin},
		{service.Write, []string{"rebuildProjection"}, auth.RoleAdmin},
		{service.Write, []string{"deleteStream"}, auth.RoleAdmin},
		{service.Write, []string{"setStreamMetadata"}, auth.RoleAdmin},
	} {
		if got := service.Authorize(c.kind, c.ops); got != c.want {
			t.Errorf("Authorize(%s, %v) = %v, want %v", c.kind, c.ops, got, c.want)
		}
	}
}
