package server

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
)

func TestJSONMemoAnswersWhatMarshallingWould(t *testing.T) {
	t.Parallel()
	memo := newJSONMemo(20)
	base := time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)
	user := func(i int) *identityv1.GetCurrentUserResponse {
		return &identityv1.GetCurrentUserResponse{User: &identityv1.User{
			Name: "users/u", Id: "u", Email: "u@example.com", Roles: []string{"admin"},
			LastLoginTime: timestamppb.New(base.Add(time.Duration(i) * time.Second)),
		}}
	}
	for round := range 3 {
		for i := range 50 {
			m := user(i)
			want, err := restJSON.Marshal(m)
			require.NoError(t, err)
			got, err := memo.marshal(m)
			require.NoError(t, err)
			require.Equal(t, string(want), string(got), "round %d, message %d", round, i)
			require.LessOrEqual(t, len(memo.answers), 20, "the memo stays within its bound")
		}
	}
	// A changed record is a new answer, never the old one's.
	m := user(1)
	before, err := memo.marshal(m)
	require.NoError(t, err)
	m.User.Email = "new@example.com"
	after, err := memo.marshal(m)
	require.NoError(t, err)
	require.NotEqual(t, string(before), string(after))
	require.Contains(t, string(after), `"new@example.com"`)
}
