//go:build !amd64

package tensor

// int8For returns the integer kernels that go with kernel set level: pure
// Go on generic; none on neon, whose float32 kernels run generation (SDOT
// kernels are not written yet).
func int8For(level string) *int8Set {
	if level == ISAGeneric {
		return int8Go
	}
	return nil
}

// availableInt8 lists every integer kernel set this CPU can run.
func availableInt8() []*int8Set { return []*int8Set{int8Go} }
