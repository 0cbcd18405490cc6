package authn

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestAdmissionDoesNotPrintItsToken: the token an admission keeps for
// Recheck stays out of whatever prints one, by value or by pointer, with
// fmt's verbs and through slog's handlers.
func TestAdmissionDoesNotPrintItsToken(t *testing.T) {
	t.Parallel()
	a := admission{principal: Principal{Role: "admin"}, method: "/x.v1.S/Watch", token: "the-bearer-token"}
	for _, v := range []any{a, &a} {
		for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
			out := fmt.Sprintf(format, v)
			require.NotContains(t, out, "the-bearer-token", format)
			require.Contains(t, out, "/x.v1.S/Watch", format)
		}
		var buf bytes.Buffer
		for _, h := range []slog.Handler{slog.NewTextHandler(&buf, nil), slog.NewJSONHandler(&buf, nil)} {
			slog.New(h).Info("call", "admission", v)
		}
		require.NotContains(t, buf.String(), "the-bearer-token")
	}
	ctx := context.WithValue(context.Background(), principalKey{}, &a)
	require.NotContains(t, fmt.Sprintf("%+v", ctx.Value(principalKey{})), "the-bearer-token")
}
