package ui

import (
	"io"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
)

func TestServesPage(t *testing.T) {
	h := Handler()
	for path, want := range map[string]string{"/": "<html", "/app.js": "EventSource", "/style.css": "body"} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		body, _ := io.ReadAll(w.Body)
		if w.Code != 200 || !strings.Contains(string(body), want) {
			t.Errorf("GET %s: %d, body without %q", path, w.Code, want)
		}
	}
}

// TestTranslations: every text the page marks for translation exists in
// English and in Portuguese, and the page loads nothing from the network.
func TestTranslations(t *testing.T) {
	html, err := os.ReadFile("static/index.html")
	if err != nil {
		t.Fatal(err)
	}
	js, err := os.ReadFile("static/app.js")
	if err != nil {
		t.Fatal(err)
	}
	src := string(js)
	en, pt := strings.Index(src, "\n  en: {"), strings.Index(src, "\n  pt: {")
	end := strings.Index(src[pt:], "\n  },") + pt
	if en < 0 || pt < en || end < pt {
		t.Fatal("cannot find the en and pt tables in app.js")
	}
	tables := map[string]string{"en": src[en:pt], "pt": src[pt:end]}
	keys := regexp.MustCompile(`data-i18n="([^"]+)"`).FindAllStringSubmatch(string(html), -1)
	used := regexp.MustCompile(`\bt\('([a-zA-Z.]+)'`).FindAllStringSubmatch(src, -1)
	if len(keys) < 20 {
		t.Fatalf("only %d translated texts found in index.html", len(keys))
	}
	for _, k := range append(keys, used...) {
		for lang, tab := range tables {
			if !strings.Contains(tab, "'"+k[1]+"':") {
				t.Errorf("text %q has no %s translation", k[1], lang)
			}
		}
	}
	for _, f := range []string{string(html), src} {
		if m := regexp.MustCompile(`(src|href)="(https?:)?//`).FindString(f); m != "" {
			t.Errorf("the page loads something from the network (%s): it must work offline", m)
		}
	}
}
