package user

import "testing"

func TestEmailChangedV1(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		`{"old_email": "a@x.org", "new_email": "b@x.org"}`: `{"newEmail":"b@x.org","oldEmail":"a@x.org"}`,
		`{"oldEmail": "a@x.org", "newEmail": "b@x.org"}`:   `{"newEmail":"b@x.org","oldEmail":"a@x.org"}`, // already current
	} {
		got, err := emailChangedV1([]byte(in))
		if err != nil || string(got) != want {
			t.Errorf("emailChangedV1(%s) = %s, %v; want %s", in, got, err, want)
		}
	}
	if _, err := emailChangedV1([]byte(`[1]`)); err == nil {
		t.Error("a payload that is not an object was accepted")
	}
}
