package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
)

// TestUploadCSVColumns: the web UI's question/answer column fields reach
// the data stage: named columns that exist give a plan, names that are not
// in the header are refused with the header shown.
func TestUploadCSVColumns(t *testing.T) {
	f := newFixture(t, randomBase(t, 1), nil)
	var csv strings.Builder
	csv.WriteString("id,pedido_do_cliente,resposta_final\n")
	for i := range 20 {
		fmt.Fprintf(&csv, "%d,q%d?,a%d\n", i, i, i%3)
	}
	post := func(q, a string) (int, string) {
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		_ = mw.WriteField("question_column", q)
		_ = mw.WriteField("answer_column", a)
		fw, _ := mw.CreateFormFile("files", "pedidos.csv")
		_, _ = io.WriteString(fw, csv.String())
		_ = mw.Close()
		req, _ := http.NewRequest("POST", f.ts.URL+"/api/train/plan", &body)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		req.Header.Set("Origin", f.ts.URL)
		resp, err := f.ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(raw)
	}
	code, raw := post("pedido_do_cliente", "resposta_final")
	var plan PlanResponse
	if code != 200 || json.Unmarshal([]byte(raw), &plan) != nil || plan.Summary.Examples != 20 {
		t.Fatalf("plan with the columns named: %d %s", code, raw)
	}
	code, raw = post("pergunta", "resposta")
	if code != 422 || !strings.Contains(raw, "pedido_do_cliente") {
		t.Fatalf("columns not in the header: want 422 naming the header, got %d %s", code, raw)
	}
}
