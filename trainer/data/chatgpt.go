package data

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"orchmind/engine/chat"
	"strings"
)

// A ChatGPT data export's conversations.json is a JSON array of
// conversations; each holds a tree of message nodes ("mapping": id → node
// with parent, children and message) and the leaf of the branch the user
// last saw ("current_node"). It is read as a stream, one conversation at a
// time, so a large export never sits in memory whole.

// maxConversationBytes bounds one conversation (a long chat is a few MB).
const maxConversationBytes = 64 << 20

// looksLikeChatGPTExport tells a conversations.json from other JSON by its
// first bytes: an array whose first object has a "mapping".
func looksLikeChatGPTExport(head []byte) bool {
	t := bytes.TrimLeft(head, " \t\r\n\xef\xbb\xbf")
	return len(t) > 0 && t[0] == '[' && bytes.Contains(head, []byte(`"mapping"`))
}

type gptNode struct {
	Message *struct {
		Author struct {
			Role string `json:"role"`
		} `json:"author"`
		Content struct {
			ContentType string            `json:"content_type"`
			Parts       []json.RawMessage `json:"parts"`
		} `json:"content"`
		Metadata struct {
			Hidden bool `json:"is_visually_hidden_from_conversation"`
		} `json:"metadata"`
	} `json:"message"`
	Parent   *string  `json:"parent"`
	Children []string `json:"children"`
}

type gptConversation struct {
	Title       string             `json:"title"`
	CurrentNode string             `json:"current_node"`
	Mapping     map[string]gptNode `json:"mapping"`
}

// loadChatGPT streams a ChatGPT export into chat records: one per assistant
// answer, with the question before it and the previous exchange as context.
func loadChatGPT(p string, r io.Reader) ([]Record, []Skip, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	dec := json.NewDecoder(br)
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('[') {
		return nil, nil, fmt.Errorf("%s: a ChatGPT export must be a JSON array of conversations", p)
	}
	var recs []Record
	var skips []Skip
	for i := 0; dec.More(); i++ {
		start := dec.InputOffset()
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, nil, fmt.Errorf("%s: conversation %d (near byte %d) is not valid JSON: %v; the export may be truncated — download it again", p, i+1, dec.InputOffset(), err)
		}
		if len(raw) > maxConversationBytes {
			skips = append(skips, Skip{fmt.Sprintf("%s[%d] (byte %d)", p, i, start), "conversation larger than 64 MB"})
			continue
		}
		var c gptConversation
		if err := json.Unmarshal(raw, &c); err != nil {
			skips = append(skips, Skip{fmt.Sprintf("%s[%d] (byte %d)", p, i, start), "not a conversation: " + err.Error()})
			continue
		}
		where := fmt.Sprintf("%s[%d] %q", p, i, c.Title)
		msgs := c.branch()
		n := 0
		for j, m := range msgs {
			if m.Role != "assistant" || j == 0 {
				continue
			}
			from := max(0, j-3)
			if msgs[from].Role != "user" {
				from++
			}
			recs = append(recs, Record{Messages: append([]chat.Message(nil), msgs[from:j+1]...), Where: fmt.Sprintf("%s turn %d", where, j), Conversation: where})
			n++
		}
		if n == 0 {
			skips = append(skips, Skip{where, "no question with a text answer"})
		}
	}
	if _, err := dec.Token(); err != nil {
		return nil, nil, fmt.Errorf("%s: the array of conversations does not end (near byte %d): the export may be truncated — download it again", p, dec.InputOffset())
	}
	return recs, skips, nil
}

// branch returns the visible user/assistant text messages of the branch
// ending at current_node (or, without one, following the last child from
// the root), oldest first, with consecutive messages of one role joined.
func (c *gptConversation) branch() []chat.Message {
	var ids []string
	seen := map[string]bool{}
	if _, ok := c.Mapping[c.CurrentNode]; ok {
		for id := c.CurrentNode; id != "" && !seen[id]; {
			seen[id] = true
			ids = append(ids, id)
			n := c.Mapping[id]
			if n.Parent == nil {
				break
			}
			id = *n.Parent
		}
		for i, j := 0, len(ids)-1; i < j; i, j = i+1, j-1 {
			ids[i], ids[j] = ids[j], ids[i]
		}
	} else {
		root := ""
		for id, n := range c.Mapping {
			if n.Parent == nil || *n.Parent == "" {
				root = id
				break
			}
		}
		for id := root; id != "" && !seen[id]; {
			seen[id] = true
			ids = append(ids, id)
			ch := c.Mapping[id].Children
			if len(ch) == 0 {
				break
			}
			id = ch[len(ch)-1]
		}
	}
	var out []chat.Message
	for _, id := range ids {
		m := c.Mapping[id].Message
		if m == nil || m.Metadata.Hidden {
			continue
		}
		role := m.Author.Role
		if role != "user" && role != "assistant" {
			continue // system prompts, tools, browsing
		}
		if ct := m.Content.ContentType; ct != "text" && ct != "multimodal_text" {
			continue // code execution output, images, …
		}
		var parts []string
		for _, raw := range m.Content.Parts {
			var s string
			if json.Unmarshal(raw, &s) == nil && strings.TrimSpace(s) != "" {
				parts = append(parts, strings.TrimSpace(s))
			}
		}
		if len(parts) == 0 {
			continue
		}
		text := strings.Join(parts, "\n")
		if len(out) > 0 && out[len(out)-1].Role == role {
			out[len(out)-1].Content += "\n\n" + text
			continue
		}
		out = append(out, chat.Message{Role: role, Content: text})
	}
	return out
}
