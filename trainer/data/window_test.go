package data

import (
	"orchmind/engine/chat"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzWindow: any cut keeps valid text, no longer than asked (plus the
// marks), with the whole answer when there is room for it.
func FuzzWindow(f *testing.F) {
	f.Add("one two three four five six seven eight nine ten", 14, 9, 20)
	f.Add("ação coração maçã pão", 5, 8, 3)
	f.Add("abc", 0, 3, 0)
	f.Fuzz(func(t *testing.T, s string, at, n, keep int) {
		if !utf8.ValidString(s) || len(s) > 1<<12 || keep > 1<<13 || keep < -10 || n > 1<<13 || n < -10 || at < -10 || at > 1<<13 {
			return
		}
		out := window(s, at, n, keep)
		if !utf8.ValidString(out) {
			t.Fatalf("invalid UTF-8 %q", out)
		}
		core := strings.TrimSuffix(strings.TrimPrefix(out, "… "), " …")
		if keep < len(s) && len(core) > max(keep, 0) {
			t.Fatalf("kept %d bytes of %d, asked %d", len(core), len(s), keep)
		}
		if at >= 0 && n > 0 && at+n <= len(s) && keep >= len(s) && !strings.Contains(out, s[at:at+n]) {
			t.Fatalf("answer lost")
		}
		_ = cutMiddle(s, keep)
	})
}

// FuzzFitChat: fitting a conversation to any length never cuts its answer
// and never exceeds the length; when it cannot, it says why.
func FuzzFitChat(f *testing.F) {
	f.Add("a long passage about the treasure under the oak", "where?", "under the oak", 20, 30, true)
	f.Add("x", "q", "a", 0, 3, false)
	f.Fuzz(func(t *testing.T, ctx, question, answer string, at, maxLen int, squad bool) {
		if len(ctx)+len(question)+len(answer) > 1<<12 || maxLen < 1 || maxLen > 1<<13 || strings.TrimSpace(answer) == "" {
			return
		}
		enc := byteEnc{}
		c := &Corpus{enc: enc, pe: newPieceEncoder(enc), tmpl: chat.Template{Name: "plain"}}
		r := Record{Messages: []chat.Message{{Role: "user", Content: ctx + "\n\n" + question}, {Role: "assistant", Content: answer}}, AnswerStart: -1}
		if squad {
			r.Context, r.AnswerStart = ctx, at
		}
		pr, comp, err := c.tmpl.Render(r.Messages)
		if err != nil {
			return
		}
		it := &item{rec: r, prompt: enc.Encode(pr, true, false), completion: enc.Encode(comp, false, true)}
		ex, _, reason := c.fitChat(it, maxLen)
		if reason != "" {
			return
		}
		if len(ex.IDs) > maxLen || decodeMasked(ex) != comp {
			t.Fatalf("%d tokens for %d; trained %q, answer %q", len(ex.IDs), maxLen, decodeMasked(ex), comp)
		}
	})
}
