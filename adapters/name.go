package adapters

import (
	"fmt"
	"regexp"
)

// MaxNameLen is the longest adapter name.
const MaxNameLen = 128

var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// ValidName reports whether s is usable as an adapter name, and so as a
// folder name inside the adapters folder: 1 to 128 letters, digits, '.',
// '_' or '-', starting with a letter or digit (so never "..", a path or a
// hidden file). The CLI, the HTTP API, the registry and pulls all use it.
func ValidName(s string) bool { return validName.MatchString(s) }

// CheckName returns nil for a valid adapter name and otherwise a one-line
// error that says what a name may contain.
func CheckName(s string) error {
	if ValidName(s) {
		return nil
	}
	return fmt.Errorf("adapter name %q: use 1 to %d letters, digits, '.', '_' or '-', starting with a letter or digit (no paths)", s, MaxNameLen)
}
