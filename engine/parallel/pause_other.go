//go:build !amd64 && !arm64

package parallel

// pause does nothing where there is no spin-wait hint in assembly.
func pause() {}
