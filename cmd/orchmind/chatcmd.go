package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"orchmind/adapters"
	nodebase "orchmind/engine/base"
	"orchmind/engine/chat"
	"orchmind/engine/model"

	"github.com/spf13/cobra"
)

// adapterDir is the folder of an --adapter DIR[:scale] value.
func adapterDir(spec string) string {
	if i := strings.LastIndexByte(spec, ':'); i > 0 {
		if _, err := os.Stat(spec); err != nil {
			return spec[:i]
		}
	}
	return spec
}

// adapterTemplate returns the prompt template the adapters were trained
// with (recorded in their orchmind.json), and whether one was recorded.
// When they disagree the first wins, with a warning.
func adapterTemplate(e *env, specs []string) (chat.Template, bool) {
	var first chat.Template
	found := false
	for _, spec := range specs {
		dir := adapterDir(spec)
		man, err := adapters.ReadManifest(dir)
		if err != nil || man == nil {
			continue
		}
		name := man.Template()
		if name == "" {
			continue
		}
		t, err := chat.TemplateByName(name)
		if err != nil {
			fmt.Fprintf(e.stderr, "warning: %s records an unknown prompt template %q: ignored\n", dir, name)
			continue
		}
		if !found {
			first, found = t, true
		} else if t.Name != first.Name {
			fmt.Fprintf(e.stderr, "warning: %s was trained with template %s, the first adapter with %s: using %s\n", dir, t.Name, first.Name, first.Name)
		}
	}
	return first, found
}

// renderTurn formats a conversation up to the assistant's next answer.
func renderTurn(t chat.Template, history []chat.Message) (string, error) {
	conv := append(append([]chat.Message(nil), history...), chat.Message{Role: "assistant"})
	p, _, err := t.Render(conv)
	return p, err
}

// askPrompt is the text generation starts from: with adapters that record
// a template (and not raw), the prompt as a user's question in that
// template; otherwise the prompt as it is. templated reports which.
func askPrompt(e *env, specs []string, prompt string, raw bool) (text string, templated bool, err error) {
	if raw || len(specs) == 0 {
		return prompt, false, nil
	}
	t, ok := adapterTemplate(e, specs)
	if !ok {
		return prompt, false, nil
	}
	p, err := renderTurn(t, []chat.Message{{Role: "user", Content: strings.TrimSpace(prompt)}})
	if err != nil {
		return "", false, err
	}
	return p, true, nil
}

// chatCmd is the interactive multi-turn chat in the terminal.
func chatCmd(e *env) *cobra.Command {
	c := verb("chat --model M [--tokenizer T] [--adapter DIR[:scale]]… [--temp T] [-n N] [--system TEXT]",
		"talk with a model and its adapters in the terminal, turn by turn (/bye leaves)", noArgs)
	bf := addBaseFlags(c)
	fs := c.Flags()
	adsp := repeatable(c, "adapter", "plug a LoRA adapter folder, DIR or DIR:scale (repeatable: adapters add up)")
	temp := fs.Float64("temp", 0, "sampling temperature; 0 = greedy (the answers an adapter was taught)")
	n := fs.IntP("n", "n", 256, "most new tokens per answer")
	seed := fs.Uint64("seed", 0, "random seed for sampling (0 = from the clock)")
	system := fs.String("system", "", "system message that starts the conversation")
	tmplName := fs.String("template", "", "prompt template: "+strings.Join(chat.TemplateNames, ", ")+" (default: the adapter's recorded one, else the model's)")
	completeDirs(c, "adapter")
	completeWords(c, "template", chat.TemplateNames...)
	c.RunE = func(c *cobra.Command, _ []string) error {
		return runChat(c.Context(), e, bf, *adsp, *temp, *n, *seed, *system, *tmplName)
	}
	return c
}

func runChat(ctx context.Context, e *env, bf baseFlags, ads []string, temp0 float64, n0 int, seed0 uint64, system0, tmplName0 string) error {
	temp, n, seed, system, tmplName := &temp0, &n0, &seed0, &system0, &tmplName0
	if *n <= 0 || *temp < 0 || math.IsNaN(*temp) {
		return fmt.Errorf("%w: -n must be positive and --temp not negative", errUsage)
	}
	b, err := bf.load()
	if err != nil {
		return err
	}
	delta, err := plug(e, b, ads)
	if err != nil {
		return err
	}
	t, err := chatTemplate(e, b, ads, *tmplName)
	if err != nil {
		return err
	}
	if *seed == 0 {
		*seed = rand.Uint64()
	}
	var history []chat.Message
	if *system != "" {
		history = append(history, chat.Message{Role: "system", Content: *system})
	}
	out := bufio.NewWriter(e.stdout)
	defer out.Flush()
	fmt.Fprintf(out, "chatting with %s%s (template %s). Type /bye to leave, /clear to forget the conversation.\n", b.Name, adapterNames(ads), t.Name)
	in := bufio.NewScanner(e.stdin)
	in.Buffer(make([]byte, 64<<10), 1<<20)
	for turn := 0; ; turn++ {
		fmt.Fprint(out, ">>> ")
		if err := out.Flush(); err != nil {
			return err
		}
		if !in.Scan() {
			fmt.Fprintln(out)
			return in.Err()
		}
		line := strings.TrimSpace(in.Text())
		switch {
		case line == "":
			continue
		case line == "/bye" || line == "/exit" || line == "/quit":
			return nil
		case line == "/clear":
			history = history[:0]
			if *system != "" {
				history = append(history, chat.Message{Role: "system", Content: *system})
			}
			fmt.Fprintln(out, "(conversation cleared)")
			continue
		case line == "/help" || line == "/?":
			fmt.Fprintln(out, "/bye leaves, /clear forgets the conversation; anything else is your next message.")
			continue
		}
		history = append(history, chat.Message{Role: "user", Content: line})
		prompt, err := fitHistory(b, t, &history, *n)
		if err != nil {
			fmt.Fprintf(out, "%v\n", err)
			continue
		}
		var answer strings.Builder
		first := true
		err = model.Generate(ctx, b.Model, b.Tok, prompt, model.Sampling{MaxNew: *n, Temperature: float32(*temp), Seed: *seed + uint64(turn), Delta: delta},
			func(piece string) error {
				if first { // the prompt itself
					first = false
					return nil
				}
				if answer.Len() == 0 {
					piece = strings.TrimLeft(piece, " ")
				}
				answer.WriteString(piece)
				if _, err := out.WriteString(piece); err != nil {
					return err
				}
				return out.Flush()
			})
		fmt.Fprintln(out)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		history = append(history, chat.Message{Role: "assistant", Content: strings.TrimSpace(answer.String())})
	}
}

// chatTemplate picks the chat's template: named, else the adapters'
// recorded one, else the model's.
func chatTemplate(e *env, b *nodebase.Base, specs []string, name string) (chat.Template, error) {
	if name != "" {
		t, err := chat.TemplateByName(name)
		if err != nil {
			return t, fmt.Errorf("%w: %v", errUsage, err)
		}
		return t, nil
	}
	if t, ok := adapterTemplate(e, specs); ok {
		return t, nil
	}
	return b.Template("")
}

// fitHistory renders the conversation, dropping its oldest turns (a
// leading system message stays) until the prompt leaves room for an answer
// of up to n tokens in the model's context.
func fitHistory(b *nodebase.Base, t chat.Template, history *[]chat.Message, n int) (string, error) {
	for {
		p, err := renderTurn(t, *history)
		if err != nil {
			return "", err
		}
		h := *history
		if len(b.Tok.Encode(p, true, false))+min(n, b.Model.SeqLen/4) <= b.Model.SeqLen {
			return p, nil
		}
		first := 0
		if len(h) > 0 && h[0].Role == "system" {
			first = 1
		}
		next := -1
		for j := first + 1; j < len(h); j++ {
			if h[j].Role == "user" {
				next = j
				break
			}
		}
		if next < 0 {
			if len(b.Tok.Encode(p, true, false)) < b.Model.SeqLen {
				return p, nil
			}
			*history = h[:len(h)-1]
			return "", errors.New("your message is longer than the model's context: shorten it")
		}
		*history = append(h[:first], h[next:]...)
	}
}

func adapterNames(specs []string) string {
	if len(specs) == 0 {
		return ""
	}
	var names []string
	for _, s := range specs {
		names = append(names, filepath.Base(adapterDir(s)))
	}
	return " + " + strings.Join(names, " + ")
}
