package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"orchmind/internal/atomicfile"
)

// hfRepoDir is the cache folder of repo: models--org--repo.
func hfRepoDir(root, repo string) string {
	return filepath.Join(root, "models--"+strings.ReplaceAll(repo, "/", "--"))
}

var commitRE = regexp.MustCompile(`^[0-9a-f]{40}$`)

// hfSnapshot returns the snapshot folder of n in the cache at root.
func hfSnapshot(root string, n HFName) (string, error) {
	dir := hfRepoDir(root, n.Repo)
	commit := n.Revision
	if !commitRE.MatchString(commit) {
		b, err := os.ReadFile(filepath.Join(dir, "refs", n.Revision))
		if err != nil {
			return "", ErrNotFound
		}
		commit = strings.TrimSpace(string(b))
	}
	snap := filepath.Join(dir, "snapshots", commit)
	if st, err := os.Stat(snap); err != nil || !st.IsDir() || commit == "" || strings.ContainsAny(commit, `/\`) {
		return "", ErrNotFound
	}
	return snap, nil
}

// isSplitGGUF reports a shard of a split GGUF (model-00001-of-00003.gguf),
// which orchmind does not load.
var splitRE = regexp.MustCompile(`-\d{5}-of-\d{5}\.gguf$`)

func quantRE(q string) *regexp.Regexp {
	return regexp.MustCompile(`(?i)(^|[-.])` + regexp.QuoteMeta(q) + `([-.]|$)`)
}

// pickGGUF chooses the GGUF of names matching quant (shortest name first).
func pickGGUF(names []string, quant string) (string, []string) {
	re := quantRE(quant)
	var all, hit []string
	for _, n := range names {
		if !strings.HasSuffix(strings.ToLower(n), ".gguf") || splitRE.MatchString(n) {
			continue
		}
		all = append(all, n)
		if quant != "" && re.MatchString(strings.TrimSuffix(path.Base(n), path.Ext(n))) {
			hit = append(hit, n)
		}
	}
	sort.Slice(hit, func(i, j int) bool { return len(hit[i]) < len(hit[j]) || len(hit[i]) == len(hit[j]) && hit[i] < hit[j] })
	if len(hit) == 0 {
		return "", all
	}
	return hit[0], all
}

// resolveHF finds n in the Hugging Face cache at root: the snapshot folder
// of a safetensors repo, or the one GGUF file that n.Quant picks.
func resolveHF(root string, n HFName) (string, error) {
	snap, err := hfSnapshot(root, n)
	if err != nil {
		return "", err
	}
	var names []string
	_ = filepath.WalkDir(snap, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if rel, err := filepath.Rel(snap, p); err == nil {
				names = append(names, filepath.ToSlash(rel))
			}
		}
		return nil
	})
	if n.Quant != "" {
		g, all := pickGGUF(names, n.Quant)
		if g == "" {
			return "", fmt.Errorf("%w: %s has no GGUF file for %s (it has %s)", ErrNotFound, snap, n.Quant, strings.Join(all, ", "))
		}
		return filepath.Join(snap, filepath.FromSlash(g)), nil
	}
	if _, err := os.Stat(filepath.Join(snap, "config.json")); err == nil {
		return snap, nil
	}
	if _, all := pickGGUF(names, ""); len(all) == 1 {
		return filepath.Join(snap, filepath.FromSlash(all[0])), nil
	} else if len(all) > 1 {
		return "", fmt.Errorf("hugging face %s holds several GGUF files (%s): pick one with hf:%s:QUANT", n.Repo, strings.Join(all, ", "), n.Repo)
	}
	return "", fmt.Errorf("%w: %s has neither config.json nor a GGUF file", ErrNotFound, snap)
}

// hfEntry is one file of the tree API.
type hfEntry struct {
	Type string `json:"type"`
	Path string `json:"path"`
	OID  string `json:"oid"`
	Size int64  `json:"size"`
	LFS  *struct {
		OID  string `json:"oid"`
		Size int64  `json:"size"`
	} `json:"lfs"`
}

// hfFolderFiles are the files of a safetensors model folder orchmind loads.
var hfFolderFiles = map[string]bool{
	"config.json": true, "generation_config.json": true, "tokenizer.json": true, "tokenizer.model": true,
	"tokenizer_config.json": true, "special_tokens_map.json": true, "added_tokens.json": true,
	"vocab.json": true, "merges.txt": true, "model.safetensors.index.json": true,
}

func (h *Hub) hfAccess(repo string, status int) *AccessError {
	ep := strings.TrimRight(h.HFEndpoint, "/")
	hint := fmt.Sprintf("%s is gated or private (or does not exist): open its page %s/%s, accept the licence there, then set HF_TOKEN to an access token of yours (%s/settings/tokens) and pull again", repo, ep, repo, ep)
	if h.HFToken != "" {
		hint = fmt.Sprintf("the token in HF_TOKEN has no access to %s: open its page %s/%s and accept the licence there (with the account the token belongs to), or check the repository name", repo, ep, repo)
	}
	return &AccessError{Status: status, URL: ep + "/" + repo, Hint: hint}
}

func (h *Hub) hfGet(ctx context.Context, repo, u string, out any) (http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	if h.HFToken != "" {
		req.Header.Set("Authorization", "Bearer "+h.HFToken)
	}
	resp, err := h.client().Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach Hugging Face at %s: %w (check the network connection; HF_ENDPOINT names a mirror)", h.HFEndpoint, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return nil, h.hfAccess(repo, resp.StatusCode)
	case resp.StatusCode == http.StatusNotFound:
		return nil, fmt.Errorf("hugging face has no %s (HTTP 404): check the name at %s/%s", repo, strings.TrimRight(h.HFEndpoint, "/"), repo)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("hugging face %s: %s", u, resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(out); err != nil {
		return nil, fmt.Errorf("hugging face %s: %w", u, err)
	}
	return resp.Header, nil
}

var nextRE = regexp.MustCompile(`<([^>]+)>;\s*rel="next"`)

// hfTree lists every file of repo at rev (following the API's pages).
func (h *Hub) hfTree(ctx context.Context, repo, rev string) ([]hfEntry, error) {
	ep := strings.TrimRight(h.HFEndpoint, "/")
	u := fmt.Sprintf("%s/api/models/%s/tree/%s?recursive=true", ep, repo, url.PathEscape(rev))
	var all []hfEntry
	for page := 0; u != "" && page < 1000; page++ {
		var es []hfEntry
		hdr, err := h.hfGet(ctx, repo, u, &es)
		if err != nil {
			return nil, err
		}
		all = append(all, es...)
		u = ""
		if m := nextRE.FindStringSubmatch(hdr.Get("Link")); m != nil {
			u = m[1]
		}
	}
	return all, nil
}

// PullHF downloads the Hugging Face model name (org/repo: the safetensors
// folder's config, tokenizer and weights; org/repo:QUANT: the one GGUF file
// of that quantization) into ModelsDir/huggingface, laid out as the Hugging
// Face cache is. Each file is verified against its LFS sha256 (or, for
// small files kept in git, its git blob id) before it is renamed into place.
func (h *Hub) PullHF(ctx context.Context, name string, progress Progress) (Resolved, error) {
	n, err := ParseHFName(name)
	if err != nil {
		return Resolved{}, err
	}
	if h.ModelsDir == "" {
		return Resolved{}, errors.New("no models folder to pull into")
	}
	ep := strings.TrimRight(h.HFEndpoint, "/")
	root := filepath.Join(h.ModelsDir, "huggingface")
	commit := n.Revision
	if !commitRE.MatchString(commit) {
		var info struct {
			SHA string `json:"sha"`
		}
		if _, err := h.hfGet(ctx, n.Repo, fmt.Sprintf("%s/api/models/%s/revision/%s", ep, n.Repo, url.PathEscape(n.Revision)), &info); err != nil {
			return Resolved{}, err
		}
		if !commitRE.MatchString(info.SHA) {
			return Resolved{}, fmt.Errorf("hugging face %s: revision %s has no commit id", n.Repo, n.Revision)
		}
		commit = info.SHA
	}
	tree, err := h.hfTree(ctx, n.Repo, commit)
	if err != nil {
		return Resolved{}, err
	}
	byPath := map[string]hfEntry{}
	var names []string
	for _, e := range tree {
		if e.Type == "file" {
			byPath[e.Path] = e
			names = append(names, e.Path)
		}
	}
	var want []hfEntry
	if n.Quant != "" {
		g, all := pickGGUF(names, n.Quant)
		if g == "" {
			if len(all) == 0 {
				return Resolved{}, fmt.Errorf("hugging face %s has no GGUF files: pull hf:%s for its safetensors", n.Repo, n.Repo)
			}
			return Resolved{}, fmt.Errorf("hugging face %s has no GGUF file for %s; it has %s", n.Repo, n.Quant, strings.Join(all, ", "))
		}
		want = append(want, byPath[g])
	} else {
		hasWeights := false
		for _, p := range names {
			if strings.Contains(p, "/") {
				continue
			}
			if strings.HasSuffix(p, ".safetensors") {
				hasWeights = true
				want = append(want, byPath[p])
			} else if hfFolderFiles[p] {
				want = append(want, byPath[p])
			}
		}
		if !hasWeights || byPath["config.json"].Path == "" {
			if _, all := pickGGUF(names, ""); len(all) > 0 {
				return Resolved{}, fmt.Errorf("hugging face %s has no safetensors model but GGUF files (%s): pull one with hf:%s:QUANT (e.g. Q4_K_M or Q8_0)", n.Repo, strings.Join(all, ", "), n.Repo)
			}
			return Resolved{}, fmt.Errorf("hugging face %s has no config.json and *.safetensors weights to pull", n.Repo)
		}
	}
	var total int64
	for _, e := range want {
		total += e.Size
	}
	agg := newAggregate(progress, total)
	snap := filepath.Join(hfRepoDir(root, n.Repo), "snapshots", commit)
	hdr := http.Header{}
	if h.HFToken != "" {
		hdr.Set("Authorization", "Bearer "+h.HFToken)
	}
	for _, e := range want {
		if strings.Contains(e.Path, "..") || path.IsAbs(e.Path) {
			return Resolved{}, fmt.Errorf("hugging face %s: refusing file path %q", n.Repo, e.Path)
		}
		f := file{url: fmt.Sprintf("%s/%s/resolve/%s/%s", ep, n.Repo, commit, e.Path), dst: filepath.Join(snap, filepath.FromSlash(e.Path)),
			size: e.Size, header: hdr}
		if e.LFS != nil {
			f.sha256, f.size = strings.ToLower(e.LFS.OID), e.LFS.Size
		} else {
			f.gitSHA1 = e.OID
		}
		if err := h.download(ctx, f, agg.sub()); err != nil {
			var ae *AccessError
			if errors.As(err, &ae) {
				return Resolved{}, h.hfAccess(n.Repo, ae.Status)
			}
			return Resolved{}, fmt.Errorf("hugging face %s: %w", n.Repo, err)
		}
	}
	if commit != n.Revision {
		ref := filepath.Join(hfRepoDir(root, n.Repo), "refs", n.Revision)
		if err := os.MkdirAll(filepath.Dir(ref), 0o755); err != nil {
			return Resolved{}, err
		}
		if err := atomicfile.WriteFile(ref, []byte(commit), 0o644); err != nil {
			return Resolved{}, fmt.Errorf("hugging face %s: %w", n.Repo, err)
		}
	}
	p, err := resolveHF(root, n)
	if err != nil {
		return Resolved{}, err
	}
	return Resolved{Path: p, Name: n.String(), Source: "orchmind"}, nil
}
