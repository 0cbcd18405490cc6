package server_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
	registryv1 "tenantry.dev/gen/tenantry/registry/v1"
	"tenantry.dev/kit/registrytest"
)

// webhookArgs let the test's receiver, on 127.0.0.1, be an endpoint, and
// retry quickly.
var webhookArgs = []string{"-webhook-allow-private-addresses", "-webhook-retry-backoff", "50ms"}

// delivery is what the receiver saw of one POST.
type delivery struct {
	ID       string
	Type     string
	UserID   string
	Revision int64
}

// receiver is a webhook endpoint on a real HTTP server. While down it
// answers 503. It checks every signature twice: with the Standard Webhooks
// library, and with the spec's algorithm written out here.
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	secret atomic.Value // string
	down   atomic.Bool
	failed atomic.Int64 // POSTs answered 503
	// refuseEmail, when set, is the email of a user whose events are
	// answered 503.
	refuseEmail atomic.Value // string

	refusedIDs map[string]bool // webhook-ids refused for refuseEmail

	mu       sync.Mutex
	attempts map[string]int // by webhook-id
	got      []delivery     // first arrival of each webhook-id, in order
	bad      []string       // signature problems
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{t: t, attempts: map[string]int{}, refusedIDs: map[string]bool{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	if r.down.Load() {
		r.failed.Add(1)
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		return
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	secret, _ := r.secret.Load().(string)
	r.mu.Lock()
	defer r.mu.Unlock()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err == nil {
		err = wh.Verify(body, req.Header)
	}
	if err != nil {
		r.bad = append(r.bad, "library: "+err.Error())
	}
	if !specSignatureValid(secret, req.Header, body) {
		r.bad = append(r.bad, "independent HMAC check failed for "+req.Header.Get("webhook-id"))
	}
	var p struct {
		Type     string         `json:"type"`
		Revision int64          `json:"revision"`
		Data     map[string]any `json:"data"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		r.bad = append(r.bad, "body: "+err.Error())
	}
	id := req.Header.Get("webhook-id")
	userID, _ := p.Data["user_id"].(string)
	email, _ := p.Data["email"].(string)
	if refused, _ := r.refuseEmail.Load().(string); refused != "" && refused == email {
		r.refusedIDs[id] = true
		r.failed.Add(1)
		http.Error(w, "not now", http.StatusServiceUnavailable)
		return
	}
	r.attempts[id]++
	// Receivers deduplicate on webhook-id, as the spec asks: delivery is
	// at least once.
	if r.attempts[id] == 1 {
		r.got = append(r.got, delivery{ID: id, Type: p.Type, UserID: userID, Revision: p.Revision})
	}
	w.WriteHeader(http.StatusNoContent)
}

// specSignatureValid checks a Standard Webhooks signature as the spec
// describes it, independently of the library: base64 of HMAC-SHA256,
// keyed with the base64-decoded part of "whsec_...", over
// "id.timestamp.body"; the header holds "v1,<sig>" entries separated by
// spaces.
func specSignatureValid(secret string, h http.Header, body []byte) bool {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil || len(key) == 0 {
		return false
	}
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%s.%s", h.Get("webhook-id"), h.Get("webhook-timestamp"), body)
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	for _, sig := range strings.Fields(h.Get("webhook-signature")) {
		if hmac.Equal([]byte(sig), []byte(want)) {
			return true
		}
	}
	return false
}

func (r *receiver) deliveries() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

func (r *receiver) requireSignaturesValid() {
	r.mu.Lock()
	defer r.mu.Unlock()
	require.Empty(r.t, r.bad, "every delivery is signed correctly")
}

// createEndpoint registers r as an endpoint of tenant for every event type.
func createEndpoint(t *testing.T, s *system, tenant string, r *receiver) *identityv1.WebhookEndpoint {
	t.Helper()
	conn := registrytest.Dial(t, s.identity.Addr().String())
	resp, err := identityv1.NewWebhookServiceClient(conn).CreateWebhookEndpoint(asOperator(tenant), &identityv1.CreateWebhookEndpointRequest{
		WebhookEndpoint: &identityv1.WebhookEndpoint{Url: r.srv.URL + "/hooks", Enabled: true}})
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(resp.GetSecret(), "whsec_"), "a Standard Webhooks secret")
	r.secret.Store(resp.GetSecret())
	return resp.GetWebhookEndpoint()
}

// watchAll reads tenant's events from revision from until SYNCED.
func watchAll(t *testing.T, client identityv1.AccountEventServiceClient, tenant, bearer string, from int64) []*identityv1.AccountEvent {
	t.Helper()
	stream, err := client.WatchAccountEvents(in(tenant, bearer), &identityv1.WatchAccountEventsRequest{StartRevision: from})
	require.NoError(t, err)
	var events []*identityv1.AccountEvent
	for {
		msg, err := stream.Recv()
		require.NoError(t, err)
		if msg.GetKind() == identityv1.WatchAccountEventsResponse_KIND_SYNCED {
			return events
		}
		events = append(events, msg.GetEvent())
	}
}

func TestWebhooksDeliverEveryEventSignedInOrderPerUserAfterAnOutage(t *testing.T) {
	t.Parallel()
	s := startSystemWith(t, webhookArgs, "acme")
	r := newReceiver(t)
	ep := createEndpoint(t, s, "acme", r)

	// The receiver is down while users sign up, log in and are changed.
	r.down.Store(true)
	alice := s.signUpAndLogin("acme", "alice@example.com")
	bob := s.signUpAndLogin("acme", "bob@example.com")
	_, err := s.users.UpdateUser(asOperator("acme"), &identityv1.UpdateUserRequest{
		User: &identityv1.User{Name: alice.GetUser().GetName(), DisplayName: "Alice"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"display_name"}}})
	require.NoError(t, err)
	_, err = s.users.UpdateUser(asOperator("acme"), &identityv1.UpdateUserRequest{
		User: &identityv1.User{Name: bob.GetUser().GetName(), Disabled: true}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"disabled"}}})
	require.NoError(t, err)
	_, err = s.users.DeleteUser(asOperator("acme"), &identityv1.DeleteUserRequest{Name: bob.GetUser().GetName()})
	require.NoError(t, err)
	registrytest.Eventually(t, "several deliveries refused while the receiver is down", func() bool { return r.failed.Load() >= 4 })

	// The deliveries show the failure meanwhile.
	conn := registrytest.Dial(t, s.identity.Addr().String())
	hooks := identityv1.NewWebhookServiceClient(conn)
	list, err := hooks.ListWebhookEndpoints(asOperator("acme"), &identityv1.ListWebhookEndpointsRequest{})
	require.NoError(t, err)
	require.Len(t, list.GetWebhookEndpoints(), 1)
	require.Contains(t, list.GetWebhookEndpoints()[0].GetLastFailure(), "503")

	r.down.Store(false)
	want := watchAll(t, identityv1.NewAccountEventServiceClient(conn), "acme", registrytest.OperatorToken, 0)
	types := map[string]bool{}
	for _, e := range want {
		types[e.GetType()] = true
	}
	for _, typ := range []string{"user.created", "user.logged_in", "user.updated", "user.disabled", "user.deleted"} {
		require.True(t, types[typ], "the changes made a %s event", typ)
	}
	registrytest.Eventually(t, "every event delivered after the outage", func() bool { return len(r.deliveries()) >= len(want) })
	r.requireSignaturesValid()

	got := r.deliveries()
	require.Len(t, got, len(want), "each event once (by webhook-id)")
	byRevision := map[int64]delivery{}
	lastOfUser := map[string]int64{}
	for _, d := range got {
		byRevision[d.Revision] = d
		require.Greater(t, d.Revision, lastOfUser[d.UserID], "the events of user %s arrive in order", d.UserID)
		lastOfUser[d.UserID] = d.Revision
	}
	for _, e := range want {
		d, ok := byRevision[e.GetRevision()]
		require.True(t, ok, "revision %d delivered", e.GetRevision())
		require.Equal(t, e.GetType(), d.Type)
		require.Equal(t, "users/"+d.UserID, e.GetUser())
	}

	// The counter saw the refusals and the deliveries.
	attempts := func(result string) float64 {
		return s.value(s.scrape(), series{"identity_webhook_delivery_attempts_total", map[string]string{"result": result}})
	}
	require.GreaterOrEqual(t, attempts("retry"), 4.0)
	require.GreaterOrEqual(t, attempts("delivered"), float64(len(want)))
	require.Zero(t, attempts("abandoned"))

	deliveries, err := hooks.ListWebhookDeliveries(asOperator("acme"), &identityv1.ListWebhookDeliveriesRequest{Parent: ep.GetName()})
	require.NoError(t, err)
	require.Len(t, deliveries.GetWebhookDeliveries(), len(want))
	for _, d := range deliveries.GetWebhookDeliveries() {
		require.Equal(t, "delivered", d.GetState())
	}

	// A rotated secret signs what follows.
	rotated, err := hooks.RotateWebhookEndpointSecret(asOperator("acme"), &identityv1.RotateWebhookEndpointSecretRequest{Name: ep.GetName()})
	require.NoError(t, err)
	r.secret.Store(rotated.GetSecret())
	s.signUpAndLogin("acme", "carol@example.com")
	registrytest.Eventually(t, "carol's events delivered", func() bool { return len(r.deliveries()) >= len(want)+2 })
	r.requireSignaturesValid()
}

func TestWebhookEndpointsAreCheckedAndForAdminsOnly(t *testing.T) {
	t.Parallel()
	s := startSystemWith(t, webhookArgs, "acme")
	hooks := identityv1.NewWebhookServiceClient(registrytest.Dial(t, s.identity.Addr().String()))
	_, err := hooks.CreateWebhookEndpoint(asOperator("acme"), &identityv1.CreateWebhookEndpointRequest{
		WebhookEndpoint: &identityv1.WebhookEndpoint{Url: "ftp://example.com/x", Enabled: true}})
	requireCode(t, err, codes.InvalidArgument)
	_, err = hooks.CreateWebhookEndpoint(asOperator("acme"), &identityv1.CreateWebhookEndpointRequest{
		WebhookEndpoint: &identityv1.WebhookEndpoint{Url: "https://example.com/x", EventTypes: []string{"user.exploded"}}})
	requireCode(t, err, codes.InvalidArgument)
	plain := s.signUpAndLogin("acme", "plain@example.com")
	_, err = hooks.ListWebhookEndpoints(in("acme", plain.GetAccessToken()), &identityv1.ListWebhookEndpointsRequest{})
	requireCode(t, err, codes.PermissionDenied)
}

// makeAdmin invites an admin into tenant and returns their access token.
func makeAdmin(t *testing.T, s *system, tenant, email string) string {
	t.Helper()
	_, err := s.users.InviteUser(asOperator(tenant), &identityv1.InviteUserRequest{Email: email, Roles: []string{"admin"}})
	require.NoError(t, err)
	_, _, token := s.mailTo(email, "invited")
	_, err = s.auth.AcceptInvitation(in(tenant), &identityv1.AcceptInvitationRequest{Token: token, Password: goodPassword})
	require.NoError(t, err)
	resp, err := s.auth.Login(in(tenant), &identityv1.LoginRequest{Email: email, Password: goodPassword})
	require.NoError(t, err)
	return resp.GetAccessToken()
}

func TestWatchAccountEventsSendsHistoryThenLiveAndResumes(t *testing.T) {
	t.Parallel()
	s := startSystem(t, "acme", "other")
	adminA := makeAdmin(t, s, "acme", "admin@acme.example")
	adminB := makeAdmin(t, s, "other", "admin@other.example")
	s.signUpAndLogin("acme", "first@example.com")
	watch := identityv1.NewAccountEventServiceClient(registrytest.Dial(t, s.identity.Addr().String()))

	history := watchAll(t, watch, "acme", adminA, 0)
	require.NotEmpty(t, history)
	for i, e := range history {
		require.Equal(t, int64(i+1), e.GetRevision(), "revisions run 1, 2, 3, ... without gaps")
		require.NotContains(t, e.GetData().AsMap(), "password_hash")
	}
	last := history[len(history)-1].GetRevision()

	// Live: a watch from 0 sees the history, SYNCED, then a new event.
	stream, err := watch.WatchAccountEvents(in("acme", adminA), &identityv1.WatchAccountEventsRequest{})
	require.NoError(t, err)
	for {
		msg, err := stream.Recv()
		require.NoError(t, err)
		if msg.GetKind() == identityv1.WatchAccountEventsResponse_KIND_SYNCED {
			require.Equal(t, last, msg.GetRevision())
			break
		}
	}
	second := s.signUpAndLogin("acme", "second@example.com")
	msg, err := stream.Recv()
	require.NoError(t, err)
	require.Equal(t, identityv1.WatchAccountEventsResponse_KIND_EVENT, msg.GetKind())
	require.Equal(t, last+1, msg.GetRevision())
	require.Equal(t, "user.created", msg.GetEvent().GetType())
	require.Equal(t, second.GetUser().GetName(), msg.GetEvent().GetUser())
	require.Equal(t, "second@example.com", msg.GetEvent().GetData().AsMap()["email"])

	// Resuming after `last` skips what was seen.
	resumed := watchAll(t, watch, "acme", adminA, last)
	require.NotEmpty(t, resumed)
	require.Equal(t, last+1, resumed[0].GetRevision())
	// Product services watch with the service credential.
	byService := watchAll(t, watch, "acme", registrytest.ServiceToken, last)
	require.Len(t, byService, len(resumed))
	for i := range resumed {
		require.True(t, proto.Equal(resumed[i], byService[i]), "the same events")
	}

	// Another tenant's admin cannot watch acme, and sees only their own.
	_, err = watchStart(watch, "acme", adminB)
	requireCode(t, err, codes.Unauthenticated)
	for _, e := range watchAll(t, watch, "other", adminB, 0) {
		require.NotEqual(t, second.GetUser().GetName(), e.GetUser())
	}
	// Events past retention are gone (deleted here as the purge would,
	// oldest first): resuming before them is refused with a reason that
	// names the oldest kept, and 0 sends what is kept.
	db, err := pgxpool.New(t.Context(), s.registry.DBURL)
	require.NoError(t, err)
	defer db.Close()
	acme, err := s.registry.Operator.GetTenant(s.registry.OperatorCtx(), &registryv1.GetTenantRequest{Name: "tenants/acme"})
	require.NoError(t, err)
	_, err = db.Exec(t.Context(), "DELETE FROM "+pgx.Identifier{acme.GetTenant().GetSchema(), "account_events"}.Sanitize()+" WHERE revision <= 2")
	require.NoError(t, err)
	_, err = watchStart(watch, "acme", adminA, 1)
	st := requireCode(t, err, codes.FailedPrecondition)
	require.Contains(t, st.Message(), "resume from 2")
	require.Equal(t, history[2].GetRevision(), watchAll(t, watch, "acme", adminA, 0)[0].GetRevision())
	require.Equal(t, history[2].GetRevision(), watchAll(t, watch, "acme", adminA, 2)[0].GetRevision())

	// A plain user cannot watch; a revision from the future is refused.
	_, err = watchStart(watch, "acme", second.GetAccessToken())
	requireCode(t, err, codes.PermissionDenied)
	_, err = watchStart(watch, "acme", adminA, last+1000)
	requireCode(t, err, codes.InvalidArgument)
}

// watchStart opens a watch and returns its first message or error.
func watchStart(c identityv1.AccountEventServiceClient, tenant, bearer string, from ...int64) (*identityv1.WatchAccountEventsResponse, error) {
	req := &identityv1.WatchAccountEventsRequest{}
	if len(from) > 0 {
		req.StartRevision = from[0]
	}
	stream, err := c.WatchAccountEvents(in(tenant, bearer), req)
	if err != nil {
		return nil, err
	}
	return stream.Recv()
}

func TestListAuditEventsPagesAndFiltersWithinTheTenant(t *testing.T) {
	t.Parallel()
	s := startSystem(t, "acme", "other")
	adminA := makeAdmin(t, s, "acme", "admin@acme.example")
	adminB := makeAdmin(t, s, "other", "admin@other.example")
	start := time.Now().Add(-time.Second)
	u := s.signUpAndLogin("acme", "user@example.com")
	for range 3 {
		_, err := s.auth.Login(in("acme"), &identityv1.LoginRequest{Email: "user@example.com", Password: goodPassword})
		require.NoError(t, err)
	}
	audit := identityv1.NewAccountEventServiceClient(registrytest.Dial(t, s.identity.Addr().String()))

	// Pages of 2, newest first, through everything.
	var all []*identityv1.AuditEvent
	token := ""
	for {
		page, err := audit.ListAuditEvents(in("acme", adminA), &identityv1.ListAuditEventsRequest{PageSize: 2, PageToken: token})
		require.NoError(t, err)
		require.LessOrEqual(t, len(page.GetAuditEvents()), 2)
		all = append(all, page.GetAuditEvents()...)
		if token = page.GetNextPageToken(); token == "" {
			break
		}
	}
	require.Greater(t, len(all), 6)
	for i := 1; i < len(all); i++ {
		require.Less(t, all[i].GetId(), all[i-1].GetId(), "newest first, no entry twice")
	}

	// Filters: the user's logins.
	logins, err := audit.ListAuditEvents(in("acme", adminA), &identityv1.ListAuditEventsRequest{
		User: u.GetUser().GetName(), Event: "user.logged_in", StartTime: timestamppb.New(start)})
	require.NoError(t, err)
	require.Len(t, logins.GetAuditEvents(), 4)
	for _, e := range logins.GetAuditEvents() {
		require.Equal(t, u.GetUser().GetName(), e.GetUser())
	}
	none, err := audit.ListAuditEvents(in("acme", adminA), &identityv1.ListAuditEventsRequest{EndTime: timestamppb.New(start)})
	require.NoError(t, err)
	require.Empty(t, none.GetAuditEvents(), "nothing was recorded before the test began")

	// A token of one query does not page another.
	first, err := audit.ListAuditEvents(in("acme", adminA), &identityv1.ListAuditEventsRequest{PageSize: 1})
	require.NoError(t, err)
	_, err = audit.ListAuditEvents(in("acme", adminA), &identityv1.ListAuditEventsRequest{PageSize: 1, PageToken: first.GetNextPageToken(), Event: "user.logged_in"})
	requireCode(t, err, codes.InvalidArgument)

	// Another tenant's admin reads nothing of acme's; a plain user nothing at all.
	_, err = audit.ListAuditEvents(in("acme", adminB), &identityv1.ListAuditEventsRequest{})
	requireCode(t, err, codes.Unauthenticated)
	theirs, err := audit.ListAuditEvents(in("other", adminB), &identityv1.ListAuditEventsRequest{User: u.GetUser().GetName()})
	require.NoError(t, err)
	require.Empty(t, theirs.GetAuditEvents())
	_, err = audit.ListAuditEvents(in("acme", u.GetAccessToken()), &identityv1.ListAuditEventsRequest{})
	requireCode(t, err, codes.PermissionDenied)
}

// TestWebhookEventSurvivesAnIdentityCrash runs identity as a process,
// kills it (SIGKILL) after a sign-up committed but before its events were
// delivered (the receiver is down), starts it again, and sees the events
// arrive: they were in the outbox, written with the sign-up.
func TestWebhookEventSurvivesAnIdentityCrash(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "identity")
	out, err := exec.Command("go", "build", "-o", bin, "tenantry.dev/identity/cmd/identity").CombinedOutput()
	require.NoError(t, err, "build identity: %s", out)
	reg := registrytest.Start(t, registryBin)
	reg.Create("acme")
	grpcAddr := registrytest.FreeAddr(t)
	args := append([]string{
		"-grpc-addr", grpcAddr, "-http-addr", "",
		"-database-url", reg.DBURL, "-registry-addr", reg.Addr,
		"-operator-token", registrytest.OperatorToken, "-service-token", registrytest.ServiceToken,
		"-component-token", reg.ComponentToken("identity"), "-key-encryption-key", keyEncryptionKey,
	}, webhookArgs...)
	start := func() *registrytest.Process {
		p := registrytest.StartProcess(t, "identity", nil, bin, args...)
		p.WaitFor(registrytest.ServingGRPC)
		return p
	}
	proc := start()
	conn := registrytest.Dial(t, grpcAddr)
	r := newReceiver(t)
	hooks := identityv1.NewWebhookServiceClient(conn)
	created, err := hooks.CreateWebhookEndpoint(asOperator("acme"), &identityv1.CreateWebhookEndpointRequest{
		WebhookEndpoint: &identityv1.WebhookEndpoint{Url: r.srv.URL, Enabled: true, EventTypes: []string{"user.created"}}})
	require.NoError(t, err)
	r.secret.Store(created.GetSecret())

	r.down.Store(true)
	auth := identityv1.NewAuthServiceClient(conn)
	registrytest.Eventually(t, "identity to serve acme", func() bool {
		_, err := auth.GetAuthConfig(in("acme"), &identityv1.GetAuthConfigRequest{})
		return err == nil
	})
	_, err = auth.SignUp(in("acme"), &identityv1.SignUpRequest{Email: "crash@example.com", Password: goodPassword})
	require.NoError(t, err)
	registrytest.Eventually(t, "a delivery refused", func() bool { return r.failed.Load() >= 1 })
	proc.Kill()
	require.Empty(t, r.deliveries(), "nothing was delivered before the crash")

	r.down.Store(false)
	start()
	registrytest.Eventually(t, "the sign-up's event delivered by the restarted identity", func() bool { return len(r.deliveries()) >= 1 })
	r.requireSignaturesValid()
	got := r.deliveries()
	require.Len(t, got, 1)
	require.Equal(t, "user.created", got[0].Type)
}

func TestAFailingEventHoldsBackItsUsersLaterEventsOnly(t *testing.T) {
	t.Parallel()
	s := startSystemWith(t, webhookArgs, "acme")
	r := newReceiver(t)
	createEndpoint(t, s, "acme", r)

	// alice's events are refused: her first holds back her later ones.
	r.refuseEmail.Store("alice@example.com")
	_, err := s.auth.SignUp(in("acme"), &identityv1.SignUpRequest{Email: "alice@example.com", Password: goodPassword})
	require.NoError(t, err)
	events := identityv1.NewAccountEventServiceClient(registrytest.Dial(t, s.identity.Addr().String()))
	first := watchAll(t, events, "acme", registrytest.OperatorToken, 0)
	require.Len(t, first, 1)
	aliceID := strings.TrimPrefix(first[0].GetUser(), "users/")
	registrytest.Eventually(t, "alice's first event refused", func() bool { return r.failed.Load() >= 1 })
	_, err = s.auth.Login(in("acme"), &identityv1.LoginRequest{Email: "alice@example.com", Password: goodPassword})
	require.NoError(t, err)

	// bob's events go through meanwhile.
	s.signUpAndLogin("acme", "bob@example.com")
	registrytest.Eventually(t, "bob's two events delivered while alice's are held", func() bool { return len(r.deliveries()) == 2 })
	registrytest.Eventually(t, "alice's first event retried", func() bool { return r.failed.Load() >= 3 })
	r.mu.Lock()
	refused := maps.Clone(r.refusedIDs)
	r.mu.Unlock()
	require.Len(t, refused, 1, "only alice's first event was tried: her login waits behind it")
	for _, d := range r.deliveries() {
		require.NotEqual(t, aliceID, d.UserID)
	}

	// Once alice's events are taken, both arrive, in order.
	r.refuseEmail.Store("")
	registrytest.Eventually(t, "alice's events delivered", func() bool { return len(r.deliveries()) == 4 })
	var alices []delivery
	for _, d := range r.deliveries() {
		if d.UserID == aliceID {
			alices = append(alices, d)
		}
	}
	require.Equal(t, []string{"user.created", "user.logged_in"}, []string{alices[0].Type, alices[1].Type})
	require.Less(t, alices[0].Revision, alices[1].Revision)
	r.requireSignaturesValid()
}

// The admin surface over REST: the audit log, an endpoint's life (create,
// filter, disable, rotate, deliveries, delete), as a tenant's admin.
func TestWebhooksAndAuditLogOverREST(t *testing.T) {
	t.Parallel()
	s := startSystemWith(t, webhookArgs, "acme")
	admin := "Bearer " + makeAdmin(t, s, "acme", "admin@acme.example")
	r := newReceiver(t)

	code, body := s.rest(http.MethodPost, "acme.localhost", "/v1/webhookEndpoints",
		`{"url":"`+r.srv.URL+`","eventTypes":["user.created"],"enabled":true}`, "Authorization", admin)
	require.Equal(t, http.StatusOK, code, "%s", body)
	var created struct {
		WebhookEndpoint struct{ Name string }
		Secret          string
	}
	require.NoError(t, json.Unmarshal(body, &created))
	require.True(t, strings.HasPrefix(created.Secret, "whsec_"))
	r.secret.Store(created.Secret)
	name := created.WebhookEndpoint.Name

	// The filter takes user.created only: the login is not delivered.
	s.signUpAndLogin("acme", "filtered@example.com")
	registrytest.Eventually(t, "the sign-up delivered", func() bool { return len(r.deliveries()) == 1 })
	require.Equal(t, "user.created", r.deliveries()[0].Type)

	code, body = s.rest(http.MethodGet, "acme.localhost", "/v1/"+name+"/deliveries", "", "Authorization", admin)
	require.Equal(t, http.StatusOK, code, "%s", body)
	require.Contains(t, string(body), `"state":"delivered"`)

	// A disabled endpoint is sent nothing, not even later.
	code, body = s.rest(http.MethodPatch, "acme.localhost", "/v1/"+name+"?updateMask=enabled", `{"enabled":false}`, "Authorization", admin)
	require.Equal(t, http.StatusOK, code, "%s", body)
	_, err := s.auth.SignUp(in("acme"), &identityv1.SignUpRequest{Email: "unheard@example.com", Password: goodPassword})
	require.NoError(t, err)
	code, body = s.rest(http.MethodGet, "acme.localhost", "/v1/"+name+"/deliveries", "", "Authorization", admin)
	require.Equal(t, http.StatusOK, code, "%s", body)
	require.Equal(t, 1, strings.Count(string(body), `"revision"`), "no delivery queued while disabled: %s", body)

	code, body = s.rest(http.MethodPost, "acme.localhost", "/v1/"+name+":rotateSecret", `{}`, "Authorization", admin)
	require.Equal(t, http.StatusOK, code, "%s", body)
	require.Contains(t, string(body), `"secret":"whsec_`)
	require.NotContains(t, string(body), created.Secret)

	code, body = s.rest(http.MethodGet, "acme.localhost", "/v1/auditEvents?event=webhook_endpoint.created", "", "Authorization", admin)
	require.Equal(t, http.StatusOK, code, "%s", body)
	require.Contains(t, string(body), `"event":"webhook_endpoint.created"`)
	require.NotContains(t, string(body), "whsec_", "the audit log never holds a secret")

	code, body = s.rest(http.MethodDelete, "acme.localhost", "/v1/"+name, "", "Authorization", admin)
	require.Equal(t, http.StatusOK, code, "%s", body)
	code, body = s.rest(http.MethodGet, "acme.localhost", "/v1/webhookEndpoints", "", "Authorization", admin)
	require.Equal(t, http.StatusOK, code, "%s", body)
	require.NotContains(t, string(body), name)
	code, _ = s.rest(http.MethodDelete, "acme.localhost", "/v1/"+name, "", "Authorization", admin)
	require.Equal(t, http.StatusNotFound, code)
}

// Without --webhook-allow-private-addresses, endpoints inside the network
// are refused with a stable reason.
func TestWebhookEndpointsInsideTheNetworkAreRefused(t *testing.T) {
	t.Parallel()
	s := startSystem(t, "acme")
	hooks := identityv1.NewWebhookServiceClient(registrytest.Dial(t, s.identity.Addr().String()))
	for _, u := range []string{"http://127.0.0.1:9/hook", "http://localhost/hook", "https://169.254.169.254/latest", "https://10.0.0.1/"} {
		_, err := hooks.CreateWebhookEndpoint(asOperator("acme"), &identityv1.CreateWebhookEndpointRequest{
			WebhookEndpoint: &identityv1.WebhookEndpoint{Url: u, Enabled: true}})
		st := requireCode(t, err, codes.InvalidArgument)
		require.Contains(t, st.Message(), "refused", u)
		var reason string
		for _, d := range st.Details() {
			if info, ok := d.(*errdetails.ErrorInfo); ok {
				reason = info.GetReason()
			}
		}
		require.Equal(t, "WEBHOOK_URL_FORBIDDEN", reason, u)
	}
}
