package data

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A synthetic export with a branch (the user edited a question: the old
// branch must be ignored), a system message, a tool message, an empty part,
// a non-text part, a hidden message and a conversation without answers.
const gptExport = `[
 {"title": "Cooking", "current_node": "a2",
  "mapping": {
   "root": {"message": null, "parent": null, "children": ["sys"]},
   "sys": {"message": {"author": {"role": "system"}, "content": {"content_type": "text", "parts": ["You are ChatGPT"]}, "metadata": {"is_visually_hidden_from_conversation": true}}, "parent": "root", "children": ["u1"]},
   "u1": {"message": {"author": {"role": "user"}, "content": {"content_type": "text", "parts": ["How long do I boil an egg?"]}}, "parent": "sys", "children": ["a1"]},
   "a1": {"message": {"author": {"role": "assistant"}, "content": {"content_type": "text", "parts": ["About nine minutes for a hard egg.", ""]}}, "parent": "u1", "children": ["old", "u2"]},
   "old": {"message": {"author": {"role": "user"}, "content": {"content_type": "text", "parts": ["OLD BRANCH question"]}}, "parent": "a1", "children": ["oldA"]},
   "oldA": {"message": {"author": {"role": "assistant"}, "content": {"content_type": "text", "parts": ["OLD BRANCH answer"]}}, "parent": "old", "children": []},
   "u2": {"message": {"author": {"role": "user"}, "content": {"content_type": "multimodal_text", "parts": [{"content_type": "image_asset_pointer"}, "And a soft one?"]}}, "parent": "a1", "children": ["t1"]},
   "t1": {"message": {"author": {"role": "tool"}, "content": {"content_type": "text", "parts": ["search results"]}}, "parent": "u2", "children": ["a2"]},
   "a2": {"message": {"author": {"role": "assistant"}, "content": {"content_type": "text", "parts": ["Six minutes."]}}, "parent": "t1", "children": []}
  }},
 {"title": "Empty", "current_node": "x", "mapping": {"x": {"message": {"author": {"role": "user"}, "content": {"content_type": "text", "parts": ["hello?"]}}, "parent": null, "children": []}}}
]`

func TestChatGPTExport(t *testing.T) {
	p := filepath.Join(t.TempDir(), "conversations.json")
	if err := os.WriteFile(p, []byte(gptExport), 0o644); err != nil {
		t.Fatal(err)
	}
	recs, _, skips, err := Load(p, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 {
		t.Fatalf("%d records, want 2 (one per answer on the current branch): %+v", len(recs), recs)
	}
	first, second := recs[0].Messages, recs[1].Messages
	if len(first) != 2 || first[0].Content != "How long do I boil an egg?" || first[1].Content != "About nine minutes for a hard egg." {
		t.Errorf("first example %+v", first)
	}
	if len(second) != 4 || second[2].Content != "And a soft one?" || second[3].Content != "Six minutes." {
		t.Errorf("second example %+v", second)
	}
	for _, r := range recs {
		for _, m := range r.Messages {
			if strings.Contains(m.Content, "OLD BRANCH") || strings.Contains(m.Content, "search results") || m.Role == "system" {
				t.Errorf("kept %q (%s), which is off the current branch or not the user's conversation", m.Content, m.Role)
			}
		}
	}
	ds, err := Build(t.Context(), p, byteEnc{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if ds.Summary.Conversations != 1 || ds.Summary.Turns != 2 {
		t.Errorf("summary: %d conversations, %d turns; want 1 and 2", ds.Summary.Conversations, ds.Summary.Turns)
	}
	if len(skips) != 1 || !strings.Contains(skips[0].Where, "Empty") {
		t.Errorf("skips %+v, want the conversation without answers", skips)
	}
}

func TestChatGPTExportTruncated(t *testing.T) {
	p := filepath.Join(t.TempDir(), "conversations.json")
	if err := os.WriteFile(p, []byte(gptExport[:len(gptExport)/2]), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, _, err := Load(p, LoadOptions{})
	if err == nil || !strings.Contains(err.Error(), "byte") || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("got %v, want an error with the position saying the export is truncated", err)
	}
}
