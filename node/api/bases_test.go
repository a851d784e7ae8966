package api

import (
	"context"
	"fmt"
	"testing"
)

// baseSwarm is fakeSwarm that can also move base models.
type baseSwarm struct {
	fakeSwarm
	pulledBase string
}

func (b *baseSwarm) PullBase(_ context.Context, fp string) (string, error) {
	b.pulledBase = fp
	return "/models/" + fp + ".gguf", nil
}

func (b *baseSwarm) PullWithBase(ctx context.Context, cid string, withBase bool, _ Accept) (string, string, error) {
	if !withBase {
		return "", "", fmt.Errorf("%w: the adapter is for base sha256:other, which peers have: pull again with --with-base", ErrBaseMissing)
	}
	return "/adapters/x", "/models/other.gguf", nil
}

func TestPullBaseRoutes(t *testing.T) {
	sw := &baseSwarm{fakeSwarm: fakeSwarm{dirs: map[string]string{}}}
	f := newFixture(t, randomBase(t, 1), func(c *Config) { c.Swarm = sw })
	var out struct{ Path, Fingerprint string }
	if c := f.call(t, "POST", "/api/swarm/pull-base", PullBaseRequest{Fingerprint: "fp:sha256:abc"}, &out); c != 200 || out.Path != "/models/sha256:abc.gguf" || sw.pulledBase != "sha256:abc" {
		t.Fatalf("pull-base: %d %+v (asked %q)", c, out, sw.pulledBase)
	}
	f.wantErr(t, 400, "POST", "/api/swarm/pull-base", PullBaseRequest{}, "fingerprint")
	// An adapter whose base is missing: 422 saying how to get it.
	f.wantErr(t, 422, "POST", "/api/swarm/pull", PullRequest{CID: "bafyx"}, "--with-base")
	var pulled struct{ Dir, Base, Note string }
	if c := f.call(t, "POST", "/api/swarm/pull", PullRequest{CID: "bafyx", WithBase: true}, &pulled); c != 200 || pulled.Base != "/models/other.gguf" || pulled.Note == "" {
		t.Fatalf("pull with_base: %d %+v", c, pulled)
	}
	// Without a swarm: 503.
	g := newFixture(t, randomBase(t, 1), nil)
	g.wantErr(t, 503, "POST", "/api/swarm/pull-base", PullBaseRequest{Fingerprint: "sha256:abc"}, "swarm")
}
