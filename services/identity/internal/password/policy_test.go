package password_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"tenantry.dev/identity/internal/password"
	"tenantry.dev/platform/fault"
)

func TestPolicyCheck(t *testing.T) {
	t.Parallel()

	const field = "new_password"
	account := []string{"alice.liddell", "Alice Liddell", "alice.liddell@wonderland.example"}
	cases := []struct {
		name       string
		policy     password.Policy
		password   string
		userInputs []string
		reason     string // "" when the password is acceptable
		message    string // a part of the message, when reason is set
	}{
		// Acceptable passwords, in several scripts.
		{name: "a passphrase is accepted", password: "correct horse battery staple ✓", userInputs: account},
		{name: "a Cyrillic passphrase is accepted", password: "пароль-надёжный-2024", userInputs: account},
		{name: "a Japanese password is accepted", password: "日本語のパスワードです", userInputs: account},
		{name: "an emoji sequence with joiners is accepted", password: "👩‍💻 writes code 🚀", userInputs: account},
		{name: "exactly the minimum of characters is accepted", password: "héllo wö"},
		{name: "spaces are accepted", password: "a b c d e f g h"},
		{name: "exactly the maximum of bytes is accepted", password: strings.Repeat("x7", 512)},
		{name: "a password is accepted without user inputs", password: "Tr0ub4dor&3"},
		{name: "user inputs shorter than 3 characters are ignored", password: "jojo rabbit 42", userInputs: []string{"jo", ""}},

		// PASSWORD_TOO_SHORT counts characters, not bytes.
		{name: "the empty password is too short", password: "",
			reason: password.ReasonTooShort, message: "at least 8 characters; it has 0"},
		{name: "a short password is too short and says how many are needed", password: "Tr0u-b",
			reason: password.ReasonTooShort, message: "choose a password of at least 8 characters; it has 6"},
		{name: "seven accented characters are too short though they take more bytes", password: "héllo w",
			reason: password.ReasonTooShort, message: "it has 7"},
		{name: "a custom minimum is applied", policy: password.Policy{MinLength: 12}, password: "Tr0ub4dor&3",
			reason: password.ReasonTooShort, message: "at least 12 characters; it has 11"},

		// PASSWORD_TOO_LONG counts bytes.
		{name: "a password over 1024 bytes is too long", password: strings.Repeat("x7", 512) + "!",
			reason: password.ReasonTooLong, message: "at most 1024 bytes; it has 1025"},
		{name: "multi-byte characters count by their bytes", password: strings.Repeat("ж", 513),
			reason: password.ReasonTooLong, message: "it has 1026"},
		{name: "a custom maximum is applied", policy: password.Policy{MaxLength: 40}, password: "correct horse battery staple and then some",
			reason: password.ReasonTooLong, message: "at most 40 bytes"},

		// PASSWORD_TOO_COMMON ignores case.
		{name: "password is too common", password: "password", reason: password.ReasonTooCommon, message: "less common"},
		{name: "12345678 is too common", password: "12345678", reason: password.ReasonTooCommon},
		{name: "qwerty123 is too common", password: "qwerty123", reason: password.ReasonTooCommon},
		{name: "iloveyou is too common", password: "iloveyou", reason: password.ReasonTooCommon},
		{name: "letmein1 is too common", password: "letmein1", reason: password.ReasonTooCommon},
		{name: "trustno1 is too common", password: "trustno1", reason: password.ReasonTooCommon},
		{name: "a common password in other case is too common", password: "PassWord", reason: password.ReasonTooCommon},
		{name: "a capitalised common password is too common", password: "Iloveyou", reason: password.ReasonTooCommon},

		// PASSWORD_TOO_SIMILAR ignores case.
		{name: "the username itself is too similar", password: "alice.liddell", userInputs: account,
			reason: password.ReasonTooSimilar, message: "does not contain your username, name or email address"},
		{name: "a password containing the username in other case is too similar", password: "MY-ALICE.LIDDELL-99", userInputs: account,
			reason: password.ReasonTooSimilar},
		{name: "a password containing the display name is too similar", password: "i am alice liddell!", userInputs: account,
			reason: password.ReasonTooSimilar},
		{name: "a password containing the email's local part is too similar", password: "xx-bobby.tables-xx",
			userInputs: []string{"bobby.tables@example.com"}, reason: password.ReasonTooSimilar},
		{name: "a password containing a three-letter input is too similar", password: "dinosaur-eve-2024",
			userInputs: []string{"Eve"}, reason: password.ReasonTooSimilar},

		// PASSWORD_INVALID.
		{name: "invalid UTF-8 is invalid", password: "abc\xffdefgh", reason: password.ReasonInvalid, message: "not valid UTF-8"},
		{name: "a NUL character is invalid", password: "abcd\x00efgh", reason: password.ReasonInvalid, message: "control characters"},
		{name: "a line break is invalid", password: "abcd\nefgh", reason: password.ReasonInvalid, message: "control characters"},
		{name: "a tab is invalid", password: "abcd\tefgh", reason: password.ReasonInvalid},
		{name: "DEL is invalid", password: "abcd\x7fefgh", reason: password.ReasonInvalid},
		{name: "a C1 control character is invalid", password: "abcd\u0085efgh", reason: password.ReasonInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.policy.Check(field, tc.password, tc.userInputs...)
			if tc.reason == "" {
				require.NoError(t, err)
				return
			}
			f, ok := fault.As(err)
			require.True(t, ok, "Check returns a fault, got %v", err)
			require.Equal(t, fault.InvalidArgument, f.Kind)
			require.Equal(t, tc.reason, f.Reason)
			require.Contains(t, f.Message, tc.message)
			require.Equal(t, []fault.FieldViolation{{Field: field, Description: f.Message}}, f.Violations)
			// "" and "password" occur in every message by themselves.
			if tc.password != "" && tc.password != "password" {
				require.NotContains(t, err.Error(), tc.password, "the error never contains the password")
			}
			for _, input := range tc.userInputs {
				if input != "" {
					require.NotContains(t, strings.ToLower(err.Error()), strings.ToLower(input), "the error never contains the user inputs")
				}
			}
		})
	}
}

func TestPolicyValidate(t *testing.T) {
	t.Parallel()

	cases := []struct {
		name    string
		policy  password.Policy
		wantErr string
	}{
		{name: "the zero policy is valid", policy: password.Policy{}},
		{name: "a longer minimum is valid", policy: password.Policy{MinLength: 15, MaxLength: 256}},
		{name: "a minimum below 8 is refused", policy: password.Policy{MinLength: 6}, wantErr: "at least 8 characters"},
		{name: "a maximum that cannot hold the minimum in any script is refused", policy: password.Policy{MinLength: 12, MaxLength: 40},
			wantErr: "at least 48 bytes"},
		{name: "negative lengths are refused", policy: password.Policy{MinLength: -1}, wantErr: "negative"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.policy.Validate()
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}
