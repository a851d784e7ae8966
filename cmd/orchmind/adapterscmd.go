package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"orchmind/adapters"
	"orchmind/adapters/merge"
	nodebase "orchmind/engine/base"
	"orchmind/engine/model"
	"orchmind/store"
	"orchmind/trainer/lora"
)

func runAdapters(ctx context.Context, e *env) error {
	if len(e.args) == 0 || strings.HasPrefix(e.args[0], "-") {
		return listAdapters(e)
	}
	sub := *e
	sub.args = e.args[1:]
	switch e.args[0] {
	case "list":
		return listAdapters(&sub)
	case "merge":
		return mergeAdapters(ctx, &sub)
	}
	return fmt.Errorf("%w: unknown adapters command %q (use list or merge)", errUsage, e.args[0])
}

func listAdapters(e *env) error {
	fs := newFlags(e, "adapters [list]", "[--dir lora_adapters]")
	dir := fs.String("dir", "lora_adapters", "folder holding adapter folders")
	if err := parseFlags(fs, e); err != nil {
		return err
	}
	ents, err := os.ReadDir(*dir)
	if errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(e.stderr, "no adapters yet: %s does not exist (train one with orchmind train)\n", *dir)
		return nil
	}
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tRANK\tBASE\tSIZE\tCREATED")
	for _, de := range ents {
		if !de.IsDir() || strings.HasPrefix(de.Name(), ".") {
			continue
		}
		p := filepath.Join(*dir, de.Name())
		a, man, err := adapters.ReadFolder(p, adapters.SafetensorsCodec{})
		if err != nil {
			fmt.Fprintf(tw, "%s\t-\t(unreadable: %v)\t\t\n", de.Name(), err)
			continue
		}
		base, created := a.BaseName, ""
		if man != nil {
			created = man.Created.Local().Format(time.DateTime)
			if base == "" {
				base = man.BaseName
			}
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", de.Name(), a.Rank, base, humanBytes(adapters.FolderSize(p)), created)
	}
	return tw.Flush()
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func mergeAdapters(ctx context.Context, e *env) error {
	fs := newFlags(e, "adapters merge", "DIR DIR… [--weights w1,w2,…] [--method cat|svd] [--rank R] --out DIR")
	weights := fs.String("weights", "", "comma-separated weights, one per adapter (default: 1/n each)")
	method := fs.String("method", "cat", "cat: exact, rank = sum of ranks; svd: best approximation at --rank")
	rank := fs.Int("rank", 0, "rank of the svd merge (default: the largest input rank)")
	out := fs.String("out", "", "folder for the merged adapter")
	baseModel := fs.String("model", "", "the base model: checks the adapters against it and also writes the GGUF LoRA (adapter.gguf)")
	// Flags may come after the folders: parse, then collect positionals.
	var dirs []string
	args := e.args
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		if fs.NArg() == 0 {
			break
		}
		dirs = append(dirs, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(dirs) < 2 || *out == "" {
		return fmt.Errorf("%w: give two or more adapter folders and --out DIR", errUsage)
	}
	ws := make([]float64, len(dirs))
	for i := range ws {
		ws[i] = 1 / float64(len(dirs))
	}
	if *weights != "" {
		parts := strings.Split(*weights, ",")
		if len(parts) != len(dirs) {
			return fmt.Errorf("%w: %d weights for %d adapters", errUsage, len(parts), len(dirs))
		}
		for i, p := range parts {
			v, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
			if err != nil {
				return fmt.Errorf("%w: weight %q is not a number", errUsage, p)
			}
			ws[i] = v
		}
	}
	var in []merge.Input
	var parents []string
	for i, d := range dirs {
		a, man, err := adapters.ReadFolder(d, adapters.SafetensorsCodec{})
		if err != nil {
			return err
		}
		if a.BaseFingerprint == "" && man != nil {
			a.BaseFingerprint = man.BaseFingerprint
		}
		if a.BaseName == "" && man != nil {
			a.BaseName = man.BaseName
		}
		in = append(in, merge.Input{Adapter: a, Weight: ws[i], ID: d})
		// A parent is named by its content ID: the CID it has (or would
		// have) in the swarm.
		c, err := store.HashFolder(ctx, d)
		if err != nil {
			return fmt.Errorf("content ID of %s: %w", d, err)
		}
		parents = append(parents, c.String())
	}
	var res *adapters.Adapter
	var rep merge.Report
	var err error
	switch *method {
	case "cat":
		res, rep, err = merge.Cat(in)
	case "svd":
		r := *rank
		if r == 0 {
			for _, x := range in {
				r = max(r, x.Adapter.Rank)
			}
		}
		res, rep, err = merge.SVD(in, r)
	default:
		return fmt.Errorf("%w: --method must be cat or svd", errUsage)
	}
	if err != nil {
		return err
	}
	mods := make([]string, len(res.TargetModules))
	for i, m := range res.TargetModules {
		mods[i] = string(m)
	}
	man := adapters.Manifest{Name: filepath.Base(*out), BaseName: res.BaseName, BaseFingerprint: res.BaseFingerprint,
		Rank: res.Rank, Alpha: res.Alpha, TargetModules: mods, Parents: parents, OrchmindVersion: version,
		Created: time.Now().UTC().Truncate(time.Second),
		Merge:   &adapters.Merge{Method: *method, Weights: ws, KeptEnergyMin: rep.MinEnergy}}
	if err := adapters.WriteFolder(*out, res, man, adapters.SafetensorsCodec{}); err != nil {
		return err
	}
	if *baseModel != "" {
		b, err := nodebase.Load(*baseModel, "", model.AsStored)
		if err != nil {
			return err
		}
		if res.BaseFingerprint != "" && res.BaseFingerprint != b.Fingerprint {
			return fmt.Errorf("the adapters were trained on base %s, --model is %s: give the base they were trained on", res.BaseFingerprint, b.Fingerprint)
		}
		if err := lora.Check(b.Model, res); err != nil {
			return err
		}
		if err := lora.WriteGGUF(filepath.Join(*out, lora.GGUFFile), lora.FromPEFTLayout(res, b.Model.Config), b.Name, b.Model.Config); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(e.stderr, "note: pass --model BASE to also write the GGUF LoRA (adapter.gguf) for llama.cpp and Ollama")
	}
	fmt.Fprintf(e.stderr, "merged %d adapters (%s) into %s: rank %d", len(in), *method, *out, res.Rank)
	if *method == "svd" {
		fmt.Fprintf(e.stderr, ", kept at least %.1f%% of each update's energy", 100*rep.MinEnergy)
	}
	fmt.Fprintln(e.stderr)
	return nil
}
