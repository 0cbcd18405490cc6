package mail_test

import (
	"log/slog"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"tenantry.dev/identity/internal/mail"
)

func TestLogSenderLogsTheWholeTextBody(t *testing.T) {
	t.Parallel()
	logger, logs := newLogger()
	m := newMessage("acme")
	link := "https://acme.tenantry.test/verify?token=abc123"
	m.Text = "Hello,\n\nconfirm your address: " + link + "\n\nThe Tenantry team\n"

	require.NoError(t, mail.LogSender{Logger: logger}.Send(t.Context(), m))
	out := logs.String()
	require.Contains(t, out, "level="+slog.LevelInfo.String())
	require.Contains(t, out, "text="+strconv.Quote(m.Text), "the full body")
	require.Contains(t, out, "link="+strconv.Quote(link), "each link on its own, for the terminal to make clickable")
	require.Contains(t, out, "id="+m.ID)
}

func TestLogSenderRefusesWhatSMTPWouldRefuse(t *testing.T) {
	t.Parallel()
	logger, logs := newLogger()
	m := newMessage("acme")
	m.Subject = "Hi\r\nBcc: attacker@example.com"
	err := mail.LogSender{Logger: logger}.Send(t.Context(), m)
	require.ErrorIs(t, err, mail.ErrInvalidMessage)
	require.ErrorIs(t, err, mail.ErrPermanent)
	require.Empty(t, logs.String())
}
