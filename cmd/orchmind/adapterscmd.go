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

	"github.com/spf13/cobra"

	"orchmind/adapters"
	"orchmind/adapters/merge"
	nodebase "orchmind/engine/base"
	"orchmind/engine/model"
	"orchmind/store"
	"orchmind/trainer/lora"
)

func adaptersCmd(e *env) *cobra.Command {
	list := verb("list [--dir lora_adapters]", "list local adapters: name, rank, base, size, date", noArgs)
	listDir := addAdaptersDirFlag(list)
	list.RunE = func(*cobra.Command, []string) error { return listAdapters(e, *listDir) }
	c := parentCmd("adapters [list|merge] [--dir lora_adapters]", "list local adapters; merge adapters (adapters merge A B --method cat|svd)",
		"", "unknown adapters command %q (use list or merge)", list, mergeCmd(e))
	// Bare, adapters lists.
	dir := addAdaptersDirFlag(c)
	unknown := c.RunE
	c.RunE = func(c *cobra.Command, args []string) error {
		if len(args) > 0 {
			return unknown(c, args)
		}
		return listAdapters(e, *dir)
	}
	return c
}

func addAdaptersDirFlag(c *cobra.Command) *string {
	dir := c.Flags().String("dir", "lora_adapters", "folder holding adapter folders")
	completeDirs(c, "dir")
	return dir
}

func listAdapters(e *env, dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(e.stderr, "no adapters yet: %s does not exist (train one with orchmind train)\n", dir)
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
		p := filepath.Join(dir, de.Name())
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

func mergeCmd(e *env) *cobra.Command {
	c := verb("merge DIR DIR… [--weights w1,w2,…] [--method cat|svd] [--rank R] --out DIR", "merge adapters into one: cat (exact) or svd (at a rank)", cobra.ArbitraryArgs)
	fs := c.Flags()
	var o mergeOptions
	fs.StringVar(&o.weights, "weights", "", "comma-separated weights, one per adapter (default: 1/n each)")
	fs.StringVar(&o.method, "method", "cat", "cat: exact, rank = sum of ranks; svd: best approximation at --rank")
	fs.IntVar(&o.rank, "rank", 0, "rank of the svd merge (default: the largest input rank)")
	fs.StringVar(&o.out, "out", "", "folder for the merged adapter")
	fs.StringVar(&o.baseModel, "model", "", "the base model: checks the adapters against it and also writes the GGUF LoRA (adapter.gguf)")
	completeWords(c, "method", "cat", "svd")
	completeDirs(c, "out")
	completeFiles(c, "model", "gguf", "bin")
	c.ValidArgsFunction = dirsOnly
	c.RunE = func(c *cobra.Command, dirs []string) error { return mergeAdapters(c.Context(), e, dirs, o) }
	return c
}

type mergeOptions struct {
	weights, method, out, baseModel string
	rank                            int
}

func mergeAdapters(ctx context.Context, e *env, dirs []string, o mergeOptions) error {
	if len(dirs) < 2 || o.out == "" {
		return fmt.Errorf("%w: give two or more adapter folders and --out DIR", errUsage)
	}
	ws := make([]float64, len(dirs))
	for i := range ws {
		ws[i] = 1 / float64(len(dirs))
	}
	if o.weights != "" {
		parts := strings.Split(o.weights, ",")
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
	switch o.method {
	case "cat":
		res, rep, err = merge.Cat(in)
	case "svd":
		r := o.rank
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
	man := adapters.Manifest{Announced: adapters.Announced{Name: filepath.Base(o.out), BaseName: res.BaseName, BaseFingerprint: res.BaseFingerprint, Rank: res.Rank, Alpha: res.Alpha, TargetModules: mods},
		Parents: parents, OrchmindVersion: e.version, Created: time.Now().UTC().Truncate(time.Second), Merge: &adapters.Merge{Method: o.method, Weights: ws, KeptEnergyMin: rep.MinEnergy}}
	if err := adapters.WriteFolder(o.out, res, man, adapters.SafetensorsCodec{}); err != nil {
		return err
	}
	if o.baseModel != "" {
		b, err := nodebase.Load(o.baseModel, "", model.AsStored)
		if err != nil {
			return err
		}
		if res.BaseFingerprint != "" && res.BaseFingerprint != b.Fingerprint {
			return fmt.Errorf("the adapters were trained on base %s, --model is %s: give the base they were trained on", res.BaseFingerprint, b.Fingerprint)
		}
		if err := lora.Check(b.Model, res); err != nil {
			return err
		}
		if err := lora.WriteGGUF(filepath.Join(o.out, lora.GGUFFile), lora.FromPEFTLayout(res, b.Model.Config), b.Name, b.Model.Config); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(e.stderr, "note: pass --model BASE to also write the GGUF LoRA (adapter.gguf) for llama.cpp and Ollama")
	}
	fmt.Fprintf(e.stderr, "merged %d adapters (%s) into %s: rank %d", len(in), o.method, o.out, res.Rank)
	if o.method == "svd" {
		fmt.Fprintf(e.stderr, ", kept at least %.1f%% of each update's energy", 100*rep.MinEnergy)
	}
	fmt.Fprintln(e.stderr)
	return nil
}
