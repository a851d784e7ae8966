package tokenizer

// Encoder is what building training examples needs of a tokenizer: text to
// ids, and the ids that begin and end a document.
type Encoder interface {
	Encode(text string, addBOS, addEOS bool) []int
	BOS() int
	EOS() int
}
