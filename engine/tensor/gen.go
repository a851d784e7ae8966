package tensor

// The amd64 kernels are generated with avo by a separate module, so that
// orchmind itself does not depend on avo. Run `go generate ./engine/tensor/`
// after editing internal/asmgen/main.go and commit the results.
//go:generate sh -c "cd internal/asmgen && go run . -out ../../kernels_amd64.s -stubs ../../kernels_stubs_amd64.go -pkg tensor"
