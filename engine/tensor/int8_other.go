//go:build !amd64 && !arm64

package tensor

// int8For returns the integer kernels that go with kernel set level: pure
// Go on generic (the only set here).
func int8For(level string) *int8Set {
	if level == ISAGeneric {
		return int8Go
	}
	return nil
}

// availableInt8 lists every integer kernel set this CPU can run.
func availableInt8() []*int8Set { return []*int8Set{int8Go} }
