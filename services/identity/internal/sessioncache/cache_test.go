package sessioncache_test

import (
	"testing"
	"time"

	"tenantry.dev/identity/internal/account"
	"tenantry.dev/identity/internal/sessioncache"
)

const (
	schemaA = "acme"
	schemaB = "globex"
	user1   = "00000000-0000-4000-8000-000000000001"
	user2   = "00000000-0000-4000-8000-000000000002"
	sess1   = "10000000-0000-4000-8000-000000000001"
	sess2   = "10000000-0000-4000-8000-000000000002"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newCache(t *testing.T, placements ...string) (*sessioncache.Cache, *clock) {
	t.Helper()
	clk := &clock{t: time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)}
	return sessioncache.New(placements, sessioncache.Options{MaxAge: 30 * time.Second, Now: clk.now}), clk
}

func session(id, userID string) *account.Session {
	return &account.Session{ID: id, UserID: userID, ExpireTime: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
}

func user(id string, roles ...string) *account.User {
	return &account.User{ID: id, Email: id + "@example.com", PasswordHash: "$argon2id$secret", Roles: roles}
}

func remember(c *sessioncache.Cache, schema, sid, uid string, roles ...string) {
	c.Remember(c.Ticket(), schema, session(sid, uid), user(uid, roles...))
}

func TestLookupReturnsWhatWasRemembered(t *testing.T) {
	c, _ := newCache(t)
	remember(c, schemaA, sess1, user1, "admin")
	s, u, ok := c.Lookup(schemaA, sess1)
	if !ok {
		t.Fatal("a remembered session is not found")
	}
	if s.ID != sess1 || u.ID != user1 || len(u.Roles) != 1 || u.Roles[0] != "admin" {
		t.Fatalf("got session %+v, user %+v", s, u)
	}
	if u.PasswordHash != "" {
		t.Error("the cache keeps password hashes; it must not")
	}
	// The user is the caller's own copy.
	u.Roles[0] = "tampered"
	if _, again, _ := c.Lookup(schemaA, sess1); again.Roles[0] != "admin" {
		t.Error("changing a looked-up user changed the cache")
	}
}

func TestLookupMisses(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(c *sessioncache.Cache, clk *clock)
		schema string
	}{
		{"another tenant's schema", func(*sessioncache.Cache, *clock) {}, schemaB},
		{"session forgotten", func(c *sessioncache.Cache, _ *clock) { c.ForgetSession(schemaA, sess1) }, schemaA},
		{"user forgotten", func(c *sessioncache.Cache, _ *clock) { c.ForgetUser(schemaA, user1) }, schemaA},
		{"tenant forgotten", func(c *sessioncache.Cache, _ *clock) { c.ForgetTenant(schemaA) }, schemaA},
		{"reset", func(c *sessioncache.Cache, _ *clock) { c.Reset() }, schemaA},
		{"older than the maximum age", func(_ *sessioncache.Cache, clk *clock) { clk.t = clk.t.Add(30 * time.Second) }, schemaA},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, clk := newCache(t)
			remember(c, schemaA, sess1, user1)
			tc.change(c, clk)
			if _, _, ok := c.Lookup(tc.schema, sess1); ok {
				t.Fatal("the session is still answered from the cache")
			}
		})
	}
}

func TestForgettingIsPrecise(t *testing.T) {
	c, _ := newCache(t)
	remember(c, schemaA, sess1, user1)
	remember(c, schemaA, sess2, user2)
	remember(c, schemaB, sess1, user1) // same ids, another tenant
	c.ForgetUser(schemaA, user1)
	c.ForgetSession(schemaA, sess2)
	if _, _, ok := c.Lookup(schemaA, sess1); ok {
		t.Error("a forgotten user's session is still answered")
	}
	if _, _, ok := c.Lookup(schemaA, sess2); ok {
		t.Error("a forgotten session is still answered")
	}
	if _, _, ok := c.Lookup(schemaB, sess1); !ok {
		t.Error("forgetting in one tenant dropped another tenant's entry")
	}
	c.ForgetTenant(schemaB)
	if n, m := c.Len(); n != 1 || m != 1 {
		// acme's sess1 entry stays (its user is gone, so it is not answered).
		t.Errorf("after forgetting globex: %d sessions, %d users cached; want 1 and 1", n, m)
	}
}

// A load that overlaps a change must not cache what it read before the
// change: the ticket taken before the read is refused afterwards.
func TestRememberRefusesALoadThatRacedAChange(t *testing.T) {
	for _, forget := range []func(c *sessioncache.Cache){
		func(c *sessioncache.Cache) { c.ForgetSession(schemaA, sess1) },
		func(c *sessioncache.Cache) { c.ForgetUser(schemaA, user1) },
		func(c *sessioncache.Cache) { c.ForgetSession(schemaB, sess2) }, // any change at all
		func(c *sessioncache.Cache) { c.ForgetTenant(schemaA) },
		func(c *sessioncache.Cache) { c.Reset() },
	} {
		c, _ := newCache(t)
		ticket := c.Ticket()
		forget(c)
		c.Remember(ticket, schemaA, session(sess1, user1), user(user1))
		if _, _, ok := c.Lookup(schemaA, sess1); ok {
			t.Fatal("a load that started before a change was cached")
		}
	}
}

func TestRememberRefusesMismatchedUser(t *testing.T) {
	c, _ := newCache(t)
	c.Remember(c.Ticket(), schemaA, session(sess1, user1), user(user2))
	if _, _, ok := c.Lookup(schemaA, sess1); ok {
		t.Fatal("a session was cached with another user than its own")
	}
}

func TestOfflineUntilEveryListenerIsOnline(t *testing.T) {
	c, _ := newCache(t, "default", "eu")
	remember(c, schemaA, sess1, user1)
	if _, _, ok := c.Lookup(schemaA, sess1); ok || c.Online() {
		t.Fatal("the cache works before its listeners listen")
	}
	c.SetOnline("default", true)
	remember(c, schemaA, sess1, user1)
	if _, _, ok := c.Lookup(schemaA, sess1); ok {
		t.Fatal("the cache works with one placement's listener still down")
	}
	c.SetOnline("eu", true)
	remember(c, schemaA, sess1, user1)
	if _, _, ok := c.Lookup(schemaA, sess1); !ok {
		t.Fatal("the cache does not work with every listener online")
	}
	// A listener that drops and comes back may have missed announcements:
	// everything from before is gone.
	c.SetOnline("eu", false)
	if _, _, ok := c.Lookup(schemaA, sess1); ok {
		t.Fatal("the cache answers while a listener is down")
	}
	c.SetOnline("eu", true)
	if _, _, ok := c.Lookup(schemaA, sess1); ok {
		t.Fatal("an entry from before the listener dropped survived its return")
	}
}

func TestSizeIsBounded(t *testing.T) {
	c := sessioncache.New(nil, sessioncache.Options{MaxEntries: 100})
	for i := range 1000 {
		id := "s" + string(rune('a'+i%26)) + time.Duration(i).String()
		c.Remember(c.Ticket(), schemaA, session(id, user1), user(user1))
	}
	if n, _ := c.Len(); n > 100 {
		t.Fatalf("%d sessions cached, more than the 100 allowed", n)
	}
}

func TestStatsCountHitsMissesAndEntries(t *testing.T) {
	c, clk := newCache(t, "default")
	c.Lookup(schemaA, sess1) // offline: a miss
	c.SetOnline("default", true)
	remember(c, schemaA, sess1, user1)
	remember(c, schemaA, sess2, user1)
	c.Lookup(schemaA, sess1) // hit
	c.Lookup(schemaA, sess2) // hit
	c.Lookup(schemaB, sess1) // not cached: a miss
	clk.t = clk.t.Add(31 * time.Second)
	c.Lookup(schemaA, sess1) // too old: a miss
	want := sessioncache.Stats{Hits: 2, Misses: 3, Sessions: 2, Users: 1, Online: true}
	if got := c.Stats(); got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	c.SetOnline("default", false)
	if got := c.Stats(); got.Online || got.Sessions != 0 || got.Hits != 2 {
		t.Fatalf("offline: got %+v; counts stay, entries go", got)
	}
}

// A tenant's login configuration is kept like a session: per schema, until
// its change is announced, MaxAge passes, a load races a change, or the
// cache goes offline.
func TestLoginConfigurationIsKeptPerSchema(t *testing.T) {
	cfg := func(min int) account.AuthConfig {
		return account.AuthConfig{Settings: account.Settings{PasswordMinLength: min},
			Providers: []*account.IdentityProvider{{ID: "corp"}}}
	}
	for _, tc := range []struct {
		name   string
		after  func(c *sessioncache.Cache, clk *clock)
		wantA  bool
		wantB  bool
		racing bool
	}{
		{name: "kept", wantA: true, wantB: true},
		{name: "its change announced", after: func(c *sessioncache.Cache, _ *clock) { c.ForgetConfig(schemaA) }, wantB: true},
		{name: "older than MaxAge", after: func(_ *sessioncache.Cache, clk *clock) { clk.t = clk.t.Add(31 * time.Second) }},
		{name: "the tenant purged", after: func(c *sessioncache.Cache, _ *clock) { c.ForgetTenant(schemaA) }, wantB: true},
		{name: "a listener lost", after: func(c *sessioncache.Cache, _ *clock) { c.SetOnline("default", false) }},
		{name: "a load that raced a change", racing: true, wantB: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, clk := newCache(t)
			ticket := c.Ticket()
			if tc.racing {
				c.ForgetConfig(schemaA)
			}
			c.RememberConfig(ticket, schemaA, cfg(12))
			c.RememberConfig(c.Ticket(), schemaB, cfg(8))
			if tc.after != nil {
				tc.after(c, clk)
			}
			got, ok := c.LookupConfig(schemaA)
			if ok != tc.wantA || (ok && got.Settings.PasswordMinLength != 12) {
				t.Errorf("schema A: got %+v, %v; want found %v", got, ok, tc.wantA)
			}
			got, ok = c.LookupConfig(schemaB)
			if ok != tc.wantB || (ok && (got.Settings.PasswordMinLength != 8 || got.Providers[0].ID != "corp")) {
				t.Errorf("schema B: got %+v, %v; want found %v", got, ok, tc.wantB)
			}
		})
	}
}
