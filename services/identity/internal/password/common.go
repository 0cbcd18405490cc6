package password

import (
	"strings"
	"sync"

	"github.com/trustelem/zxcvbn/frequency"
)

// commonPasswordList names the zxcvbn frequency list used as the list of
// common passwords: the 30,000 most frequent passwords in leaked password
// dumps (upstream zxcvbn took them from Mark Burnett's Xato corpus of ten
// million), which zxcvbn ships compiled into its frequency package.
// Reusing it keeps the list out of our repository and updated with a
// dependency bump.
const commonPasswordList = "passwords"

// commonPasswords returns the set of common passwords, in lower case,
// building it on first use: the map costs a few megabytes and some
// milliseconds, which a service that never checks a new password (or a
// test that does not) should not pay.
var commonPasswords = sync.OnceValue(func() map[string]struct{} {
	list := frequency.FrequencyLists[commonPasswordList]
	set := make(map[string]struct{}, len(list))
	for _, p := range list {
		// The list is already lower case; lowering again keeps the
		// case-insensitive lookup correct if a later version is not.
		set[strings.ToLower(p)] = struct{}{}
	}
	return set
})

// isCommon reports whether password, ignoring case, is on the list of
// common passwords.
func isCommon(password string) bool {
	_, found := commonPasswords()[strings.ToLower(password)]
	return found
}
