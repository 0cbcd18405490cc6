package mail

import "errors"

// Sentinel errors, matched with errors.Is.
var (
	// ErrInvalidMessage reports a message that must not be sent as it is: a
	// recipient that is not one plain address, a header field holding a line
	// break or other control character (header injection), a missing body.
	// Callers validate user input first; reaching this is a bug or an attack.
	ErrInvalidMessage = errors.New("invalid mail message")

	// ErrPermanent marks a delivery failure that retrying cannot fix, such as
	// an SMTP 5xx reply to RCPT TO or to the message data, or a message that
	// fails validation. The worker gives up on such a mail at once instead of
	// retrying it MaxAttempts times. Senders wrap it around the cause.
	ErrPermanent = errors.New("permanent delivery failure")
)
