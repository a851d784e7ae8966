// Package data loads training data (plain text, fortunes, JSON/JSONL in
// prompt/completion, Alpaca, chat, SQuAD and Pirá shapes, ChatGPT exports,
// CSV/TSV, the text layer of PDFs, DOCX, ODT and HTML), formats it with a
// chat template, tokenises it with a loss mask, de-duplicates, fits it to a
// sequence length (shortening contexts, never answers; splitting long
// texts with overlap), splits off a seeded eval set and packs it into
// fixed-length rows.
package data
