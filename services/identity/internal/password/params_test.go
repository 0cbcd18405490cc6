package password_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"tenantry.dev/identity/internal/password"
)

func TestParamsValidate(t *testing.T) {
	t.Parallel()

	with := func(change func(*password.Params)) password.Params {
		p := password.DefaultParams
		change(&p)
		return p
	}
	cases := []struct {
		name    string
		params  password.Params
		wantErr []string // substrings of the error, one per problem
	}{
		{name: "the defaults are valid", params: password.DefaultParams},
		{name: "more memory, passes and threads are valid", params: with(func(p *password.Params) {
			p.Memory, p.Time, p.Threads = 64*1024, 3, 4
		})},
		{name: "less memory than OWASP's minimum is refused", params: with(func(p *password.Params) { p.Memory = 19*1024 - 1 }),
			wantErr: []string{"memory"}},
		{name: "one pass is refused", params: with(func(p *password.Params) { p.Time = 1 }),
			wantErr: []string{"time"}},
		{name: "zero threads are refused", params: with(func(p *password.Params) { p.Threads = 0 }),
			wantErr: []string{"threads"}},
		{name: "a short salt is refused", params: with(func(p *password.Params) { p.SaltLen = 8 }),
			wantErr: []string{"salt"}},
		{name: "a short hash is refused", params: with(func(p *password.Params) { p.KeyLen = 16 }),
			wantErr: []string{"hash length"}},
		{name: "more than a GiB of memory is refused", params: with(func(p *password.Params) { p.Memory = password.MaxMemory + 1 }),
			wantErr: []string{"memory"}},
		{name: "more passes than the limit are refused", params: with(func(p *password.Params) { p.Time = password.MaxTime + 1 }),
			wantErr: []string{"time"}},
		{name: "every problem is reported", params: password.Params{},
			wantErr: []string{"memory", "time", "threads", "salt", "hash length"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.params.Validate()
			if len(tc.wantErr) == 0 {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, want := range tc.wantErr {
				require.Contains(t, err.Error(), want)
			}
		})
	}
}
