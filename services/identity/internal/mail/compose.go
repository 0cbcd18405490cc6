package mail

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	netmail "net/mail"
	"net/textproto"
	"strings"
	"time"

	"tenantry.dev/platform/tenantname"
)

// maxLineLength is the length RFC 5322 says header lines SHOULD stay within;
// folding keeps headers there where they have spaces to fold at.
const maxLineLength = 78

// messageID is the Message-ID of the mail with outbox id id. It depends on
// nothing but the id, so every resend of one outbox row carries the same
// Message-ID and receivers can recognise (and drop) the duplicate.
func messageID(id string) string {
	return "<" + id + "@tenantry>"
}

// compose renders m, already validated, as an RFC 5322 message with CRLF
// line endings. Header values come only from encoders that cannot emit CR or
// LF (addresses via net/mail, the subject via RFC 2047) plus folding done
// here; writeHeader checks again anyway.
func compose(m Message, from, to *netmail.Address, date time.Time) ([]byte, error) {
	var b bytes.Buffer
	headers := []struct{ name, value string }{
		{"Date", date.Format(time.RFC1123Z)},
		{"From", from.String()},
		{"To", to.String()},
		{"Subject", mime.QEncoding.Encode("utf-8", subjectText(m.Subject))},
		{"Message-ID", messageID(m.ID)},
		{"MIME-Version", "1.0"},
		// RFC 3834: stops vacation responders from answering a robot.
		{"Auto-Submitted", "auto-generated"},
	}
	for _, h := range headers {
		if err := writeHeader(&b, h.name, h.value); err != nil {
			return nil, err
		}
	}

	if m.HTML == "" {
		writeRawHeader(&b, "Content-Type", "text/plain; charset=utf-8")
		writeRawHeader(&b, "Content-Transfer-Encoding", "quoted-printable")
		b.WriteString("\r\n")
		if err := writeQuotedPrintable(&b, m.Text); err != nil {
			return nil, err
		}
		return b.Bytes(), nil
	}

	mw := multipart.NewWriter(&b)
	// "=_" cannot occur in quoted-printable output ('=' is always followed by
	// two hex digits or a line break), so this boundary can never collide
	// with a body, and deriving it from the id keeps resends identical.
	if err := mw.SetBoundary("=_" + strings.ReplaceAll(m.ID, "-", "")); err != nil {
		return nil, fmt.Errorf("mail: compose: %w", err)
	}
	writeRawHeader(&b, "Content-Type", mime.FormatMediaType("multipart/alternative", map[string]string{"boundary": mw.Boundary()}))
	b.WriteString("\r\n")
	// Least preferred first, as RFC 2046 asks of multipart/alternative.
	for _, part := range []struct{ contentType, body string }{
		{"text/plain; charset=utf-8", m.Text},
		{"text/html; charset=utf-8", m.HTML},
	} {
		pw, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {part.contentType},
			"Content-Transfer-Encoding": {"quoted-printable"},
		})
		if err != nil {
			return nil, fmt.Errorf("mail: compose: %w", err)
		}
		if err := writeQuotedPrintable(pw, part.body); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, fmt.Errorf("mail: compose: %w", err)
	}
	return b.Bytes(), nil
}

// subjectText is the subject as it goes into the header: without text
// direction controls (and, though validate already refused them, control
// characters and line separators). Subjects name tenants, and a tenant name
// stored before the registry refused direction overrides, or a row written
// then, would otherwise read as something else in the recipient's inbox:
// "Confirm ... for Evil\u202Emoc.elgoog" shows as "... for Evilgoogle.com".
func subjectText(s string) string {
	return tenantname.SanitizeDisplayText(s)
}

// writeHeader writes one header field, folded at spaces so that lines stay
// within maxLineLength where the value allows. It refuses values holding CR
// or LF, the last line of defence against header injection.
//
// Every word is preceded by a space, the first by the one after the colon,
// and a fold turns such a space into CRLF plus that space, so unfolding
// (deleting the CRLFs) gives back exactly "Name: value". Between RFC 2047
// encoded words the space is ignored by decoders. A fold happens only before
// a non-empty word, so no line is whitespace only, which RFC 5322 forbids;
// an encoded word (up to 75 characters) that does not fit after the name
// moves to a line of its own.
func writeHeader(b *bytes.Buffer, name, value string) error {
	if strings.ContainsAny(value, "\r\n") {
		return fmt.Errorf("%w: header %s contains a line break", ErrInvalidMessage, name)
	}
	b.WriteString(name)
	b.WriteByte(':')
	lineLen := len(name) + 1
	for w := range strings.SplitSeq(value, " ") {
		if w != "" && lineLen+1+len(w) > maxLineLength {
			b.WriteString("\r\n")
			lineLen = 0
		}
		b.WriteByte(' ')
		b.WriteString(w)
		lineLen += 1 + len(w)
	}
	b.WriteString("\r\n")
	return nil
}

// writeRawHeader writes a header whose value is a constant or already safe.
func writeRawHeader(b *bytes.Buffer, name, value string) {
	b.WriteString(name)
	b.WriteString(": ")
	b.WriteString(value)
	b.WriteString("\r\n")
}

// writeQuotedPrintable writes s quoted-printable encoded: 7-bit clean, lines
// of at most 76 characters whatever the body holds (long links included), and
// line breaks as CRLF.
func writeQuotedPrintable(w io.Writer, s string) error {
	qp := quotedprintable.NewWriter(w)
	if _, err := qp.Write([]byte(s)); err != nil {
		return fmt.Errorf("mail: compose: encode body: %w", err)
	}
	if err := qp.Close(); err != nil {
		return fmt.Errorf("mail: compose: encode body: %w", err)
	}
	return nil
}
