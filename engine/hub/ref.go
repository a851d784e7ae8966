package hub

import (
	"fmt"
	"regexp"
	"strings"
)

// DefaultOllamaHost is the registry host Ollama names models under.
const DefaultOllamaHost = "registry.ollama.ai"

// OllamaName is a parsed Ollama model name: [host/][namespace/]model[:tag].
type OllamaName struct {
	Host, Namespace, Model, Tag string
}

// String is the short form Ollama prints: model:tag for library models.
func (n OllamaName) String() string {
	s := n.Model + ":" + n.Tag
	if n.Namespace != "library" {
		s = n.Namespace + "/" + s
	}
	if n.Host != DefaultOllamaHost {
		s = n.Host + "/" + s
	}
	return s
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// ParseOllamaName parses gemma3:1b, library/gemma3, user/model:tag or
// host/namespace/model:tag. The namespace defaults to library and the tag
// to latest.
func ParseOllamaName(s string) (OllamaName, error) {
	n := OllamaName{Host: DefaultOllamaHost, Namespace: "library", Tag: "latest"}
	parts := strings.Split(s, "/")
	last := parts[len(parts)-1]
	if i := strings.LastIndexByte(last, ':'); i >= 0 {
		n.Tag = last[i+1:]
		last = last[:i]
	}
	n.Model = last
	switch len(parts) {
	case 1:
	case 2:
		n.Namespace = parts[0]
	case 3:
		n.Host, n.Namespace = parts[0], parts[1]
	default:
		return n, fmt.Errorf("ollama model name %q has too many parts: use model:tag, namespace/model:tag or host/namespace/model:tag", s)
	}
	for _, p := range []string{n.Namespace, n.Model, n.Tag} {
		if !nameRE.MatchString(p) {
			return n, fmt.Errorf("ollama model name %q is not valid: use names like gemma3:1b or user/model:tag", s)
		}
	}
	if n.Host == "" || strings.ContainsAny(n.Host, " \\") {
		return n, fmt.Errorf("ollama model name %q has an invalid host", s)
	}
	return n, nil
}

// HFName is a parsed Hugging Face name: org/repo, with an optional quant
// (org/repo:Q4_K_M picks one GGUF file) and revision (org/repo@rev).
type HFName struct {
	Repo, Quant, Revision string
}

// String is org/repo[:QUANT][@rev].
func (n HFName) String() string {
	s := n.Repo
	if n.Quant != "" {
		s += ":" + n.Quant
	}
	if n.Revision != "main" {
		s += "@" + n.Revision
	}
	return s
}

// ParseHFName parses org/repo, org/repo:Q4_K_M or org/repo@revision.
func ParseHFName(s string) (HFName, error) {
	n := HFName{Revision: "main"}
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		n.Revision = s[i+1:]
		s = s[:i]
	}
	hasQuant := false
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		n.Quant, hasQuant = s[i+1:], true
		s = s[:i]
	}
	n.Repo = s
	parts := strings.Split(s, "/")
	if len(parts) != 2 || !nameRE.MatchString(parts[0]) || !nameRE.MatchString(parts[1]) || !nameRE.MatchString(n.Revision) || (hasQuant && !nameRE.MatchString(n.Quant)) {
		return n, fmt.Errorf("hugging face name %q is not valid: use org/repo, org/repo:Q4_K_M or org/repo@revision", s)
	}
	return n, nil
}

// Scheme splits a base spec into its scheme ("ollama", "hf" or "" for a
// path) and the rest.
func Scheme(spec string) (scheme, rest string) {
	for _, p := range []string{"ollama:", "hf:"} {
		if r, ok := strings.CutPrefix(spec, p); ok {
			return strings.TrimSuffix(p, ":"), r
		}
	}
	return "", spec
}
