package server_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
	"tenantry.dev/kit/registrytest"
)

// TestAccountDeletionByItsOwner: an owner asks for their account's
// deletion, is mailed, and keeps the account by logging in or cancelling
// within the tenant's grace period; with no grace left, identity's sweeper
// deletes it.
func TestAccountDeletionByItsOwner(t *testing.T) {
	t.Parallel()
	s := startSystem(t, "bye")
	accounts := identityv1.NewAccountServiceClient(s.conn)
	setGrace := func(days int32) error {
		_, err := s.users.UpdateTenantSettings(asOperator("bye"), &identityv1.UpdateTenantSettingsRequest{
			Settings: &identityv1.TenantSettings{DeletionGraceDays: days}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"deletion_grace_days"}},
		})
		return err
	}
	requireCode(t, setGrace(91), codes.InvalidArgument)
	requireCode(t, setGrace(-1), codes.InvalidArgument)
	require.NoError(t, setGrace(3))

	const owner = "leaving@example.com"
	login := s.signUpAndLogin("bye", owner)
	as := in("bye", login.GetAccessToken())
	deletion := func() *identityv1.GetAccountDeletionResponse {
		t.Helper()
		d, err := accounts.GetAccountDeletion(as, &identityv1.GetAccountDeletionRequest{})
		require.NoError(t, err)
		return d
	}
	require.Nil(t, deletion().GetDeleteTime(), "no deletion asked for yet")

	before := time.Now()
	r, err := accounts.RequestAccountDeletion(as, &identityv1.RequestAccountDeletionRequest{})
	require.NoError(t, err)
	require.WithinDuration(t, before.Add(3*24*time.Hour), r.GetDeleteTime().AsTime(), time.Minute)
	require.Equal(t, r.GetDeleteTime().AsTime(), deletion().GetDeleteTime().AsTime())
	_, body, _ := s.mailTo(owner, "will be deleted")
	require.Contains(t, body, "It will be deleted in 3 days")

	// Logging in within the grace period keeps the account.
	_, err = s.auth.Login(in("bye"), loginRequest(owner, goodPassword))
	require.NoError(t, err)
	require.Nil(t, deletion().GetDeleteTime(), "a login cancels the deletion")

	// So does cancelling.
	_, err = accounts.RequestAccountDeletion(as, &identityv1.RequestAccountDeletionRequest{})
	require.NoError(t, err)
	_, err = accounts.CancelAccountDeletion(as, &identityv1.CancelAccountDeletionRequest{})
	require.NoError(t, err)
	require.Nil(t, deletion().GetDeleteTime())

	// Only a user deletes their own account.
	requireCode(t, func() error {
		_, err := accounts.RequestAccountDeletion(asOperator("bye"), &identityv1.RequestAccountDeletionRequest{})
		return err
	}(), codes.PermissionDenied)

	// With no grace, the sweeper (which a starting replica runs at once)
	// deletes the account.
	require.NoError(t, setGrace(0))
	_, err = accounts.RequestAccountDeletion(as, &identityv1.RequestAccountDeletionRequest{})
	require.NoError(t, err)
	s.startReplica()
	registrytest.Eventually(t, "the account deleted", func() bool {
		_, err := s.users.GetUser(asOperator("bye"), &identityv1.GetUserRequest{Name: login.GetUser().GetName()})
		return requireCodeIs(err, codes.NotFound)
	})
	_, err = s.auth.Login(in("bye"), loginRequest(owner, goodPassword))
	requireCode(t, err, codes.Unauthenticated)
}
