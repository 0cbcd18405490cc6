// Package password hashes passwords and decides which passwords an account
// may choose.
//
// A Hasher turns a password into an argon2id hash in the PHC string format
// that other argon2 libraries read:
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>
//
// and verifies a password against such a string. Each hash holds Memory KiB
// for its whole run, so a Hasher lets only a fixed number of hashes run at
// once; the rest wait, or give up when their context ends. That turns a
// login flood into queueing instead of an out-of-memory kill.
//
// Login uses the Hasher like this:
//
//	ok, needsRehash, err := hasher.Verify(ctx, account.PasswordHash, given)
//	// ok: the password is right. needsRehash: the stored hash was made with
//	// other parameters than the hasher's; store hasher.Hash(ctx, given).
//
// and, when no account has the given email, hasher.VerifyNothing(ctx, given)
// so that the answer takes as long as for an account that exists.
//
// A Policy checks a new password before it is hashed: its length, that it
// is printable text, that it is not one of the passwords attackers try
// first, and that it does not contain the account's own names. Its errors
// are fault.Invalid values with stable reasons (ReasonTooShort and the
// others), and never contain the password.
package password
