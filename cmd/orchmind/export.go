package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"orchmind/adapters"
	nodebase "orchmind/engine/base"
	"orchmind/engine/chat"
	"orchmind/engine/model"
	"orchmind/internal/atomicfile"
	"orchmind/node/registry"
	"orchmind/trainer/lora"
)

func exportCmd(e *env) *cobra.Command {
	const bare = "orchmind export ollama ADAPTER --base BASE.gguf | orchmind export gguf ADAPTER --model BASE --out MERGED.gguf"
	return parentCmd("export <target>", "export ollama ADAPTER --base BASE.gguf (Modelfile); export gguf ADAPTER --model BASE --out X.gguf (adapter baked in)",
		bare, "unknown export target %q (use ollama or gguf)", exportOllamaCmd(e), exportMergedCmd(e))
}

// Modelfile returns an Ollama Modelfile that runs baseGGUF with the GGUF
// LoRA adapterGGUF, using only documented keywords (FROM, ADAPTER,
// TEMPLATE, PARAMETER).
//
// extraStops are more texts that end an answer (the BOS token of llama2.c
// bases, which end documents with it).
func Modelfile(baseGGUF, adapterGGUF string, tmpl chat.Template, extraStops ...string) (string, error) {
	// The prompt exactly as the adapter saw it in training: the template's
	// rendering of one user turn, with Ollama's {{ .Prompt }} as the text;
	// the end of the trained answer is a stop.
	prompt, end, err := tmpl.Render([]chat.Message{{Role: "user", Content: "{{ .Prompt }}"}, {Role: "assistant"}})
	if err != nil {
		return "", err
	}
	if strings.Contains(prompt, `"""`) {
		return "", fmt.Errorf("the %s template cannot be written as an Ollama TEMPLATE", tmpl.Name)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Made by orchmind: the base model and a LoRA specialist trained on it (prompt template %s).\n", tmpl.Name)
	fmt.Fprintf(&b, "FROM %s\n", quoteModelfile(baseGGUF))
	fmt.Fprintf(&b, "ADAPTER %s\n", quoteModelfile(adapterGGUF))
	fmt.Fprintf(&b, "TEMPLATE \"\"\"%s\"\"\"\n", prompt)
	if s := strings.TrimSpace(end); s != "" {
		fmt.Fprintf(&b, "PARAMETER stop %q\n", s)
	}
	for _, s := range extraStops {
		// Ollama's Modelfile does not unescape \n: stops are single lines.
		if s = strings.TrimSpace(s); s != "" && !strings.ContainsAny(s, "\n\r") {
			fmt.Fprintf(&b, "PARAMETER stop %q\n", s)
		}
	}
	fmt.Fprintf(&b, "PARAMETER temperature 0\n")
	return b.String(), nil
}

func quoteModelfile(p string) string {
	if strings.ContainsAny(p, " \t\"") {
		return fmt.Sprintf("%q", p)
	}
	return p
}

func exportOllamaCmd(e *env) *cobra.Command {
	c := verb("ollama ADAPTER_DIR --base BASE.gguf [--out DIR] [--name NAME]", "write a Modelfile that runs the adapter on its base in Ollama", cobra.ArbitraryArgs)
	fs := c.Flags()
	baseGGUF := fs.String("base", "", "the base model as a GGUF file (make one with orchmind model convert)")
	out := fs.String("out", "", "folder for the Modelfile (default: the adapter folder)")
	name := fs.String("name", "", "name for ollama create (default: the adapter folder name)")
	completeFiles(c, "base", "gguf")
	completeDirs(c, "out")
	c.ValidArgsFunction = dirsOnly
	c.RunE = func(_ *cobra.Command, pos []string) error {
		if len(pos) != 1 || *baseGGUF == "" {
			return fmt.Errorf("%w: give the adapter folder and --base BASE.gguf", errUsage)
		}
		return exportOllama(e, pos[0], *baseGGUF, *out, *name)
	}
	return c
}

func exportOllama(e *env, dir, baseGGUF, out, name string) error {
	ad := filepath.Join(dir, lora.GGUFFile)
	if _, err := os.Stat(ad); err != nil {
		return fmt.Errorf("%s has no %s: retrain it with this version of orchmind (which writes one) or convert the PEFT files", dir, lora.GGUFFile)
	}
	_, gf, err := model.LoadGGUF(baseGGUF, model.AsStored)
	if err != nil {
		return fmt.Errorf("--base must be a GGUF model: %w", err)
	}
	var stops []string
	if gf.Metadata[nodebase.DocEndKey] == "bos" {
		// A llama2.c base ends each text with BOS, which Ollama prints.
		toks, _ := gf.Metadata["tokenizer.ggml.tokens"].([]any)
		if id, ok := gf.Uint("tokenizer.ggml.bos_token_id"); ok && id < uint64(len(toks)) {
			if s, ok := toks[id].(string); ok && s != "" {
				stops = append(stops, s)
			}
		}
	}
	absBase, _ := filepath.Abs(baseGGUF)
	absAd, _ := filepath.Abs(ad)
	if out == "" {
		out = dir
	}
	if name == "" {
		name = strings.ToLower(filepath.Base(filepath.Clean(dir)))
	}
	tmpl, err := trainedTemplate(dir)
	if err != nil {
		return err
	}
	text, err := Modelfile(absBase, absAd, tmpl, stops...)
	if err != nil {
		return err
	}
	mf := filepath.Join(out, "Modelfile")
	if err := atomicfile.WriteFile(mf, []byte(text), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "wrote %s\n", mf)
	fmt.Fprintf(e.stdout, "ollama create %s -f %s\n", name, mf)
	return nil
}

func exportMergedCmd(e *env) *cobra.Command {
	c := verb("gguf ADAPTER_DIR --model BASE --out MERGED.gguf [--scale S]", "write one GGUF model with the adapter baked into the base", cobra.ArbitraryArgs)
	bf := addBaseFlags(c)
	out := c.Flags().String("out", "", "the merged GGUF file to write")
	scale := c.Flags().Float64("scale", 1, "strength of the adapter baked in")
	completeFiles(c, "out", "gguf")
	c.ValidArgsFunction = dirsOnly
	c.RunE = func(_ *cobra.Command, pos []string) error {
		if len(pos) != 1 || *out == "" {
			return fmt.Errorf("%w: give the adapter folder, --model BASE and --out MERGED.gguf", errUsage)
		}
		return exportMerged(e, bf, pos[0], *out, *scale)
	}
	return c
}

func exportMerged(e *env, bf baseFlags, dir, out string, scale float64) error {
	b, err := bf.load()
	if err != nil {
		return err
	}
	a, man, err := lora.ReadPEFT(dir, b.Model)
	if err != nil {
		return err
	}
	if a.BaseFingerprint != "" && a.BaseFingerprint != b.Fingerprint {
		fmt.Fprintf(e.stderr, "warning: the adapter was trained on %s, this base is %s\n", a.BaseFingerprint, b.Fingerprint)
	}
	merged, err := registry.Merge(b.Model, a, float32(scale))
	if err != nil {
		return err
	}
	v, err := nodebase.VocabOf(b.Tok, b.Model.Vocab)
	if err != nil {
		return fmt.Errorf("export %s: %w", dir, err)
	}
	extra := map[string]string{"orchmind.merged_adapter": filepath.Base(filepath.Clean(dir))}
	if b.ChatTemplate != "" {
		extra["tokenizer.chat_template"] = b.ChatTemplate
	}
	if b.Train != b.Tok {
		extra[nodebase.DocEndKey] = "bos"
	}
	// The template the adapter was trained with goes with it, so that
	// orchmind's chat and API apply it to the merged model (base.Template).
	tmpl := b.PromptTemplate
	if man != nil && man.Template() != "" {
		t, err := chat.TemplateByName(man.Template())
		if err != nil {
			return fmt.Errorf("export %s: %s: %w", dir, adapters.ManifestFile, err)
		}
		tmpl = t.Name
	}
	if tmpl != "" {
		extra[nodebase.PromptTemplateKey] = tmpl
	}
	if err := model.WriteGGUF(out, merged, b.Name+"+"+filepath.Base(filepath.Clean(dir)), model.AsStored,
		v, extra); err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "wrote %s: %s with the adapter baked in (weights kept as %s)\n", out, b.Name, b.Type)
	return nil
}

// trainedTemplate is the prompt template an adapter was trained with, as
// its orchmind.json records it (prompt_template, or data_summary.template
// in older manifests; plain when it says nothing).
func trainedTemplate(dir string) (chat.Template, error) {
	man, err := adapters.ReadManifest(dir)
	if err != nil {
		return chat.Template{}, err
	}
	name := man.Template()
	if name == "" {
		return chat.Template{Name: "plain"}, nil
	}
	return chat.TemplateByName(name)
}
