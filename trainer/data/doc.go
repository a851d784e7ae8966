// Package data loads training data (plain text, fortunes, JSON/JSONL in
// prompt/completion, Alpaca, chat, SQuAD and Pirá shapes), formats it with a
// chat template, tokenises it with a loss mask, de-duplicates, splits off a
// seeded eval set, truncates and packs it into fixed-length rows.
package data
