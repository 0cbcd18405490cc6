package server_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
)

// TestListUsersSearch: ListUsers' query finds users by part of their
// email or name, case-insensitively and with no wildcard, pages through
// the matches with a token bound to the search, and refuses a query that
// is too long or holds control characters.
func TestListUsersSearch(t *testing.T) {
	t.Parallel()
	s := startSystem(t, "search")
	for _, email := range []string{"alice@example.com", "alina@example.org", "bob@example.com", "al_x@example.com"} {
		s.signUpAndLogin("search", email)
	}
	list := func(req *identityv1.ListUsersRequest) ([]string, string, error) {
		resp, err := s.users.ListUsers(asOperator("search"), req)
		var emails []string
		for _, u := range resp.GetUsers() {
			emails = append(emails, u.GetEmail())
		}
		return emails, resp.GetNextPageToken(), err
	}
	got, _, err := list(&identityv1.ListUsersRequest{Query: "ALI"})
	require.NoError(t, err)
	require.Equal(t, []string{"alice@example.com", "alina@example.org"}, got)
	got, _, err = list(&identityv1.ListUsersRequest{Query: "al_"})
	require.NoError(t, err)
	require.Equal(t, []string{"al_x@example.com"}, got, "_ is no wildcard")
	got, _, err = list(&identityv1.ListUsersRequest{Query: "%"})
	require.NoError(t, err)
	require.Empty(t, got, "% is no wildcard")

	first, token, err := list(&identityv1.ListUsersRequest{Query: "example.com", PageSize: 2})
	require.NoError(t, err)
	require.Equal(t, []string{"al_x@example.com", "alice@example.com"}, first)
	rest, _, err := list(&identityv1.ListUsersRequest{Query: "example.com", PageSize: 2, PageToken: token})
	require.NoError(t, err)
	require.Equal(t, []string{"bob@example.com"}, rest)
	_, _, err = list(&identityv1.ListUsersRequest{Query: "example.org", PageSize: 2, PageToken: token})
	requireCode(t, err, codes.InvalidArgument)

	for _, bad := range []string{strings.Repeat("a", 201), "al\x00ice", "al\nice"} {
		_, _, err := list(&identityv1.ListUsersRequest{Query: bad})
		requireCode(t, err, codes.InvalidArgument)
	}
}
