package listquery

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"

	"tenantry.dev/platform/fault"
)

// ReasonInvalidPageToken is the reason of every fault for a page token that
// was not returned by ListTenants, or not for this request's filter.
const ReasonInvalidPageToken = "INVALID_PAGE_TOKEN"

// pageTokenField is the request field that a page token comes from.
const pageTokenField = "page_token"

// Bounds of what a page token can hold. A real token is about 130 bytes.
const (
	maxPageTokenLength = 512
	maxCursorLength    = 63 // a slug
	filterHashBytes    = 16
)

// pageTokenVersion changes whenever the token's contents change meaning, so
// that tokens from an older server are refused instead of misread.
const pageTokenVersion = 1

// PageToken is where the next page of a ListTenants starts. Tenants are
// listed in slug order, so the position is the last slug already returned.
//
// The token is opaque to clients but not secret and not signed: it contains
// only a slug the client has already seen and a hash of its own filter, and a
// forged token can only start a listing the client could have asked for
// anyway. The store binds AfterSlug as a query parameter.
type PageToken struct {
	// AfterSlug is the slug of the last tenant of the previous page; the next
	// page starts after it.
	AfterSlug string
	// FilterHash is FilterHash of the filter parameters of the request that
	// returned the token.
	FilterHash string
}

// wirePageToken is the JSON form of a PageToken. The short names keep tokens
// short in URLs.
type wirePageToken struct {
	Version    int    `json:"v"`
	AfterSlug  string `json:"a"`
	FilterHash string `json:"f"`
}

// EncodePageToken returns t as a next_page_token: base64url-encoded JSON.
func EncodePageToken(t PageToken) string {
	data, err := json.Marshal(wirePageToken{Version: pageTokenVersion, AfterSlug: t.AfterSlug, FilterHash: t.FilterHash})
	if err != nil {
		// Marshalling a struct of strings and an int cannot fail.
		panic("listquery: encoding a page token: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(data)
}

// DecodePageToken reads a page_token. The empty token is the first page and
// decodes to the zero PageToken. Anything EncodePageToken did not produce is
// refused with INVALID_PAGE_TOKEN; the caller then checks the token against
// its request with CheckFilter.
func DecodePageToken(s string) (PageToken, error) {
	if s == "" {
		return PageToken{}, nil
	}
	if len(s) > maxPageTokenLength {
		return PageToken{}, errPageTokenInvalid()
	}
	data, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		return PageToken{}, errPageTokenInvalid().WithCause(err)
	}
	var w wirePageToken
	if err := json.Unmarshal(data, &w); err != nil {
		return PageToken{}, errPageTokenInvalid().WithCause(err)
	}
	if w.Version != pageTokenVersion {
		return PageToken{}, errPageTokenInvalid().WithCause(errors.New("page token version " + strconv.Itoa(w.Version)))
	}
	if !validCursor(w.AfterSlug) || !validFilterHash(w.FilterHash) {
		return PageToken{}, errPageTokenInvalid().WithCause(errors.New("page token fields out of range"))
	}
	t := PageToken{AfterSlug: w.AfterSlug, FilterHash: w.FilterHash}
	// Only the exact bytes EncodePageToken produces are a token. This refuses
	// in one place what encoding/json would let through: unknown or
	// differently-cased fields, duplicates, spaces and trailing data.
	if EncodePageToken(t) != s {
		return PageToken{}, errPageTokenInvalid().WithCause(errors.New("page token is not in canonical form"))
	}
	return t, nil
}

// CheckFilter refuses a token that was returned for a request with other
// filter parameters: its position means nothing in another listing. The zero
// token (the first page) goes with any filter.
func (t PageToken) CheckFilter(filterHash string) error {
	if t == (PageToken{}) || t.FilterHash == filterHash {
		return nil
	}
	return fault.Invalid(pageTokenField, ReasonInvalidPageToken,
		"page_token does not match the filter of the request that returned it; send the same filter and show_deleted as that request, or no page_token to start again")
}

// FilterHash returns a short digest of the parameters that decide which
// tenants a listing contains, to bind page tokens to them. Pass the
// canonical Filter.String() rather than the filter as sent, so that spelling
// the same filter differently on the next page is not a mismatch. The page
// size is not included: AIP-158 lets it change from page to page.
func FilterHash(filter string, showDeleted bool) string {
	h := sha256.New()
	// The fixed-width flag comes first so that no filter text can imitate it.
	h.Write([]byte("tenantry.listquery.v1\x00" + strconv.FormatBool(showDeleted) + "\x00"))
	h.Write([]byte(filter))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:filterHashBytes])
}

// validCursor reports whether s can be a slug that a listing returned. Only
// the shape is checked: it is bound as a query parameter, and the reserved
// names of tenantname.ParseSlug must not make an existing tenant's position
// unusable.
func validCursor(s string) bool {
	if s == "" || len(s) > maxCursorLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// validFilterHash reports whether s is something FilterHash returns.
func validFilterHash(s string) bool {
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	return err == nil && len(b) == filterHashBytes
}

func errPageTokenInvalid() *fault.Error {
	return fault.Invalid(pageTokenField, ReasonInvalidPageToken,
		"page_token is not one that ListTenants returned; send the next_page_token of the previous response unchanged, or no page_token for the first page")
}
