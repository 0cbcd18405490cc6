// Package pages holds identity's account pages: sign-up, email
// verification, login, password reset, the account page (password,
// sessions, log out), invitation acceptance and the tenant admin's pages
// (users, OAuth clients). They are HTML templates, CSS and JavaScript embedded in the binary;
// the scripts call identity's REST API on the same origin (the tenant's
// host), so the pages know nothing about tenants themselves.
//
// # Forms without the script
//
// Every form is method="post" with its own page's path as action, so a
// form the browser sends by itself (JavaScript off, or Enter pressed before
// the script loaded) never puts a password in a URL. What the server does
// with such a POST depends on the page:
//
//   - sign-up, login (with its second factor's step), login by a code by
//     email, forgot password, reset password, invitation and email
//     verification: the server acts on the form through [Accounts], which
//     calls the same domain methods as the API (same rules, same answers
//     that reveal no account, same rate limits), and shows the page again
//     with the outcome: every field's error next to its field at once, what
//     was typed kept except passwords. A login sets the browser session's
//     cookies, as a login by the script does, and redirects (303) to the
//     form's next, or the account page, where the script finds the session.
//     The pages opened from an email link carry the link's token in a
//     hidden field of their form.
//   - the account page's and the admin pages' forms act for a logged-in
//     user, whose credential (an access token) only the script holds: the
//     server refuses them with 405 and a page saying the form was not sent.
//     Those pages say they need JavaScript until the script removes the
//     notice.
//
// Only the fields of a POST's body are read, never its URL's; nothing of a
// refused form is read, echoed or logged, and a password is never shown
// again.
//
// # CSRF
//
// A form posted from another origin is refused (403, the page saying the
// form was not sent) before anything is read, by
// [http.CrossOriginProtection]: the browser's Sec-Fetch-Site header must say
// same-origin (or none: the user's own navigation), or, from a browser that
// does not send it, the Origin header must name the request's host. A
// request with neither header passes, as that check assumes: browsers send
// one of them with every POST since 2020 or so, and a client that sends
// neither is no browser another site can drive. This needs no token in the
// forms and no state on the server, and it is why an Origin check alone
// would not do: under the pages' Referrer-Policy (no-referrer) a browser
// posts a form with "Origin: null", so the check must be able to rely on
// Sec-Fetch-Site, which every current browser sends. The forms that act
// use no cookie (they are how one gets a session in the first place); the
// session cookies they set are SameSite=Strict, like the script's.
//
// # What the pages guarantee
//
//   - A GET of a page whose query holds a password field (from a form
//     submitted as GET by an older copy of a page) is redirected to the bare
//     page, so the password leaves the address bar.
//   - ?next=, where the login page goes once logged in, is followed only
//     when it is a path on the page's own origin. The server redirects a
//     page whose next fails [IsLocalPath] to the same page without it, and
//     follows only such a next after a login posted without the script; the
//     login script checks again with the browser's own URL parser (same
//     origin, no path starting with "//") and otherwise goes to /account.
//
// What callers must still do: route every method of each of [Paths] to
// [Handler] (not only GET), or a POST to a page falls through to whatever
// else serves the path; and give [Handler] an [Accounts] whose answers are
// the API's.
package pages
