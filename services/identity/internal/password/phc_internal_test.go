package password

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// validPHC is a well-formed hash string with DefaultParams: 16 bytes of
// salt and 32 of hash, all zero.
var validPHC = encodePHC(DefaultParams, make([]byte, 16), make([]byte, 32))

func TestParsePHC(t *testing.T) {
	t.Parallel()

	const (
		salt = "AAAAAAAAAAAAAAAAAAAAAA"                      // 16 zero bytes
		key  = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" // 32 zero bytes
	)
	cases := []struct {
		name    string
		encoded string
		want    Params // checked when wantErr is empty
		wantErr string
	}{
		{name: "a hash with the default parameters parses", encoded: validPHC, want: DefaultParams},
		{name: "a hash with other parameters parses with them",
			encoded: "$argon2id$v=19$m=65536,t=3,p=4$" + salt + "$" + key,
			want:    Params{Memory: 65536, Time: 3, Threads: 4, SaltLen: 16, KeyLen: 32}},
		{name: "a hash weaker than the floor still parses, for migration",
			encoded: "$argon2id$v=19$m=4096,t=1,p=1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA",
			want:    Params{Memory: 4096, Time: 1, Threads: 1, SaltLen: 8, KeyLen: 16}},

		{name: "an empty string is refused", encoded: "", wantErr: "not an argon2id"},
		{name: "argon2i is refused", encoded: strings.Replace(validPHC, "argon2id", "argon2i", 1), wantErr: "not an argon2id"},
		{name: "argon2d is refused", encoded: strings.Replace(validPHC, "argon2id", "argon2d", 1), wantErr: "not an argon2id"},
		{name: "bcrypt is refused", encoded: "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy", wantErr: "not an argon2id"},
		{name: "version 16 is refused", encoded: strings.Replace(validPHC, "v=19", "v=16", 1), wantErr: "not an argon2id"},
		{name: "a missing version is refused", encoded: strings.Replace(validPHC, "v=19$", "", 1), wantErr: "not an argon2id"},
		{name: "a missing hash is refused", encoded: "$argon2id$v=19$m=19456,t=2,p=1$" + salt, wantErr: "fields"},
		{name: "a trailing dollar is refused", encoded: validPHC + "$", wantErr: "fields"},
		{name: "a missing parameter is refused", encoded: "$argon2id$v=19$m=19456,t=2$" + salt + "$" + key, wantErr: "parameters m, t and p"},
		{name: "an extra parameter is refused", encoded: "$argon2id$v=19$m=19456,t=2,p=1,keyid=x$" + salt + "$" + key, wantErr: "parameters m, t and p"},
		{name: "parameters out of order are refused", encoded: "$argon2id$v=19$t=2,m=19456,p=1$" + salt + "$" + key, wantErr: "want parameter m"},
		{name: "a negative parameter is refused", encoded: "$argon2id$v=19$m=19456,t=-2,p=1$" + salt + "$" + key, wantErr: "not a number"},
		{name: "a parameter beyond 32 bits is refused", encoded: "$argon2id$v=19$m=99999999999,t=2,p=1$" + salt + "$" + key, wantErr: "not a number"},
		{name: "a leading zero is refused", encoded: "$argon2id$v=19$m=019456,t=2,p=1$" + salt + "$" + key, wantErr: "leading zeros"},
		{name: "more than a GiB of memory is refused", encoded: "$argon2id$v=19$m=1048577,t=2,p=1$" + salt + "$" + key, wantErr: "above the limit"},
		{name: "more than 20 passes are refused", encoded: "$argon2id$v=19$m=19456,t=21,p=1$" + salt + "$" + key, wantErr: "above the limit"},
		{name: "more than 255 threads are refused", encoded: "$argon2id$v=19$m=19456,t=2,p=256$" + salt + "$" + key, wantErr: "above the limit"},
		{name: "zero passes are refused", encoded: "$argon2id$v=19$m=19456,t=0,p=1$" + salt + "$" + key, wantErr: "below argon2's minimum"},
		{name: "zero threads are refused", encoded: "$argon2id$v=19$m=19456,t=2,p=0$" + salt + "$" + key, wantErr: "below argon2's minimum"},
		{name: "less than 8 KiB per thread is refused", encoded: "$argon2id$v=19$m=64,t=2,p=9$" + salt + "$" + key, wantErr: "below argon2's minimum"},
		{name: "a salt that is not base64 is refused", encoded: "$argon2id$v=19$m=19456,t=2,p=1$!!!!$" + key, wantErr: "salt is not base64"},
		{name: "a hash that is not base64 is refused", encoded: "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$" + key[:42] + "*", wantErr: "hash is not base64"},
		{name: "padded base64 is refused", encoded: "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "==$" + key, wantErr: "salt is not base64"},
		{name: "non-zero trailing bits are refused", encoded: "$argon2id$v=19$m=19456,t=2,p=1$" + salt[:21] + "B$" + key, wantErr: "salt is not base64"},
		{name: "a line break inside base64 is refused", encoded: "$argon2id$v=19$m=19456,t=2,p=1$" + salt[:10] + "\n" + salt[10:] + "$" + key, wantErr: "canonical"},
		{name: "a short salt is refused", encoded: "$argon2id$v=19$m=19456,t=2,p=1$AAAA$" + key, wantErr: "salt must be"},
		{name: "an empty hash is refused", encoded: "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$", wantErr: "hash must be"},
		{name: "a huge hash is refused", encoded: "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$" + strings.Repeat("A", 120), wantErr: "hash must be"},
		{name: "a huge string is refused before parsing", encoded: validPHC + strings.Repeat("A", maxEncodedLen), wantErr: "bytes long"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := parsePHC(tc.encoded)
			if tc.wantErr != "" {
				require.ErrorIs(t, err, ErrInvalidHash)
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got.params)
			require.Equal(t, tc.encoded, encodePHC(got.params, got.salt, got.key))
		})
	}
}

// FuzzParsePHC checks that no stored string, however hostile, makes the
// parser panic, and that whatever it accepts is within the limits that
// keep Verify cheap and safe to hand to argon2.
func FuzzParsePHC(f *testing.F) {
	f.Add(validPHC)
	f.Add("$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA")
	f.Add("$argon2i$v=19$m=19456,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Add("$argon2id$v=19$m=4294967295,t=4294967295,p=255$$")
	f.Add("$argon2id$v=19$$$$")
	f.Add("")
	f.Fuzz(func(t *testing.T, encoded string) {
		got, err := parsePHC(encoded)
		if err != nil {
			require.ErrorIs(t, err, ErrInvalidHash)
			return
		}
		p := got.params
		require.LessOrEqual(t, p.Memory, uint32(MaxMemory))
		require.LessOrEqual(t, p.Time, uint32(MaxTime))
		require.GreaterOrEqual(t, p.Time, uint32(1))
		require.GreaterOrEqual(t, p.Threads, uint8(1))
		require.GreaterOrEqual(t, p.Memory, 8*uint32(p.Threads))
		require.Equal(t, int(p.SaltLen), len(got.salt))
		require.Equal(t, int(p.KeyLen), len(got.key))
		require.Equal(t, encoded, encodePHC(p, got.salt, got.key), "accepted strings are canonical")
	})
}
