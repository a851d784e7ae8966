package main

import "github.com/spf13/pflag"

// addColumnFlags registers --question-column and --answer-column, the CSV
// columns of questions and answers (train and the plan share them).
func addColumnFlags(fs *pflag.FlagSet) (question, answer *string) {
	question = fs.String("question-column", "", "CSV/TSV column holding the questions (default: recognised by name: question, pergunta, prompt, instruction, …)")
	answer = fs.String("answer-column", "", "CSV/TSV column holding the answers (default: recognised by name: answer, resposta, completion, output, response, …)")
	return question, answer
}
