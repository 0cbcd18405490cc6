package account

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestLoginRatesAreRememberedFromTheLastRead(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	settings := func(perSecond int, version int64) Settings {
		return Settings{MaxLoginsPerSecond: perSecond, Version: version}
	}
	type step struct {
		name    string
		learn   *Settings // learnt at the step's time, before asking
		at      time.Duration
		tenant  string
		want    int
		wantHit bool
	}
	s := func(perSecond int, version int64) *Settings { v := settings(perSecond, version); return &v }
	steps := []step{
		{name: "a tenant never read is not known", tenant: "a"},
		{name: "a read rate is known at once", learn: s(50, 1), tenant: "a", want: 50, wantHit: true},
		{name: "another tenant's is not", tenant: "b"},
		{name: "a newer version replaces it", learn: s(200, 2), at: time.Second, tenant: "a", want: 200, wantHit: true},
		{name: "a read that began before a change does not undo it", learn: s(50, 1), at: 2 * time.Second, tenant: "a", want: 200, wantHit: true},
		{name: "it is still used just before it is too old", at: time.Second + loginRateMaxAge - time.Nanosecond, tenant: "a", want: 200, wantHit: true},
		{name: "a rate read too long ago is read again", at: time.Second + loginRateMaxAge, tenant: "a"},
		{name: "reading the same version again makes it fresh", learn: s(200, 2), at: 20 * time.Second, tenant: "a", want: 200, wantHit: true},
		{name: "settings without a rate teach nothing", learn: s(0, 3), at: 21 * time.Second, tenant: "a", want: 200, wantHit: true},
	}
	var r loginRates
	for _, st := range steps {
		now := t0.Add(st.at)
		if st.learn != nil {
			r.learn("a", *st.learn, now)
		}
		got, ok := r.get(st.tenant, now)
		require.Equal(t, st.wantHit, ok, st.name)
		require.Equal(t, st.want, got, st.name)
	}
	r.forget("a")
	_, ok := r.get("a", t0.Add(21*time.Second))
	require.False(t, ok, "a purged tenant's rate is forgotten")
}
