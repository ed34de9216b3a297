package order

import (
	"encoding/json"
	"testing"
)

func TestCreatedV1(t *testing.T) {
	t.Parallel()
	in := `{"order_id": "o1", "customer_id": "c1", "items": [{"sku": "A", "quantity": 3, "price": 9.99}, {"sku": "B", "quantity": 1, "price": 0.125}], "total": 30.095}`
	got, err := createdV1([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	var c Created
	if err := json.Unmarshal(got, &c); err != nil {
		t.Fatal(err)
	}
	if c.OrderID != "o1" || c.CustomerID != "c1" || len(c.Items) != 2 || c.Items[0].UnitPrice != 999 || c.Items[1].UnitPrice != 13 || c.Total != 3*999+13 {
		t.Errorf("createdV1 gave %s", got)
	}
	// Already in the current shape: unchanged in meaning.
	cur := `{"orderId": "o1", "customerId": "c1", "items": [{"sku": "A", "quantity": 2, "unitPrice": 500}], "total": 1000}`
	got, err = createdV1([]byte(cur))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(got, &c); err != nil || c.Items[0].UnitPrice != 500 || c.Total != 1000 {
		t.Errorf("createdV1 changed a current payload: %s %v", got, err)
	}
	if _, err := createdV1([]byte(`{"items": [{"sku": "A", "quantity": 1, "price": "nine"}]}`)); err == nil {
		t.Error("a price that is not a number was accepted")
	}
}
