package mail

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
)

// LogSender "sends" mail by logging it at INFO, full text body included, for
// development: `make run` has no mail server, and the log is where a
// developer finds verification and password-reset links. The body holds
// those single-use links, which is acceptable only because LogSender is for
// development; never configure it in production, where the log would leak
// them to anyone who can read it.
type LogSender struct {
	// Logger receives the mails; nil means slog.Default().
	Logger *slog.Logger
}

var _ Sender = LogSender{}

// linkPattern finds URLs in a text body, to log each on its own so the
// terminal can make it clickable.
var linkPattern = regexp.MustCompile(`https?://[^\s<>"]+`)

// Send logs m. It validates m like SMTPSender does, so development catches
// a message production would refuse.
func (s LogSender) Send(ctx context.Context, m Message) error {
	m, _, err := validate(m)
	if err != nil {
		return fmt.Errorf("mail: refuse to log %s mail %s: %w: %w", m.Kind, m.ID, ErrPermanent, err)
	}
	logger := s.Logger
	if logger == nil {
		logger = slog.Default()
	}
	attrs := []slog.Attr{
		slog.String("id", m.ID),
		slog.String("tenant", m.Tenant),
		slog.String("kind", m.Kind),
		slog.String("to", m.To),
		slog.String("subject", m.Subject),
	}
	for _, link := range linkPattern.FindAllString(m.Text, -1) {
		attrs = append(attrs, slog.String("link", link))
	}
	attrs = append(attrs, slog.String("text", m.Text))
	logger.LogAttrs(ctx, slog.LevelInfo, "mail not sent, logged instead (development sender)", attrs...)
	return nil
}
