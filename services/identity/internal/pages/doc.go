// Package pages holds identity's account pages: sign-up, email
// verification, login, password reset, the account page (password,
// sessions, log out), invitation acceptance and the tenant admin's user
// list. They are static HTML, CSS and JavaScript embedded in the binary;
// the scripts call identity's REST API on the same origin (the tenant's
// host), so the pages know nothing about tenants themselves.
//
// # What the pages guarantee
//
//   - Every form is method="post" with its own page's path as action, so a
//     form the browser sends by itself (JavaScript off, or Enter pressed
//     before the script loaded) never puts a password in a URL. A page
//     answers such a POST with 405 and a short page saying the form was not
//     sent; the body is never read, echoed or logged.
//   - A GET of a page whose query holds a password field (from a form
//     submitted as GET by an older copy of a page) is redirected to the bare
//     page, so the password leaves the address bar.
//   - ?next=, where the login page goes once logged in, is followed only
//     when it is a path on the page's own origin. The server redirects a
//     page whose next fails [IsLocalPath] to the same page without it; the
//     login script checks again with the browser's own URL parser (same
//     origin, no path starting with "//") and otherwise goes to /account.
//     The script's check is the one that decides: the server's is stricter,
//     and only keeps a hostile link out of the address bar.
//
// What callers must still do: route every method of each of [Paths] to
// [Handler] (not only GET), or a POST to a page falls through to whatever
// else serves the path.
package pages
