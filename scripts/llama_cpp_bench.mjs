// Generation speed of llama.cpp (npm node-llama-cpp, prebuilt CPU
// libraries; it picks the kernels for this CPU itself) on a GGUF: the
// counterpart of orchmind's BenchmarkInference (prompt of 128 tokens into
// an empty cache, then 64 single-token decodes after it).
//
// usage: node llama_cpp_bench.mjs MODEL.gguf THREADS [REPS]
// (scripts/llama_cpp_bench.sh installs the package and runs this.)
import { getLlama } from "node-llama-cpp";

const [modelPath, threadsArg, repsArg] = process.argv.slice(2);
if (!modelPath || !threadsArg) {
  console.error("usage: node llama_cpp_bench.mjs MODEL.gguf THREADS [REPS]");
  process.exit(2);
}
const threads = Number(threadsArg);
const reps = Number(repsArg || 3);
const nPrompt = 128, nGen = 64;

const llama = await getLlama({ gpu: false, build: "never", logLevel: "error" });
const model = await llama.loadModel({ modelPath, gpuLayers: 0 });
// Prompt ids as BenchmarkInference's, 3 + (i·7919) mod (vocab−3), with
// the smallest benchmark vocabulary (32000; the ids do not change the work).
const prompt = Array.from({ length: nPrompt }, (_, i) => 3 + ((i * 7919) % (32000 - 3)));
// Tokens per CPU-second of the whole process (llama.cpp's threads run in
// it) beside tokens per wall-second: on a shared machine the CPU time moves
// less with the load (BenchmarkInference reports tokens/cpu-s too).
const cpuS = (u) => (u.user + u.system) / 1e6;
const prompts = [], gens = [], promptsCPU = [], gensCPU = [];
for (let r = 0; r < reps; r++) {
  const ctx = await model.createContext({ contextSize: 1024, threads, batchSize: 512 });
  const seq = ctx.getSequence();
  let t0 = performance.now(), c0 = process.cpuUsage();
  await seq.evaluateWithoutGeneratingNewTokens(prompt);
  prompts.push(nPrompt / ((performance.now() - t0) / 1000));
  promptsCPU.push(nPrompt / cpuS(process.cpuUsage(c0)));
  t0 = performance.now();
  c0 = process.cpuUsage();
  // Each decode asks for its token (greedy), as a generation loop does:
  // without it llama.cpp skips the output layer (no logits requested),
  // which is a third of the weights at Gemma 3 1B's 262k vocabulary, while
  // orchmind's benchmark computes the logits of every token.
  for (let i = 0; i < nGen; i++) {
    await seq.controlledEvaluate([[5 + (i % 100), { generateNext: { token: true } }]]);
  }
  gens.push(nGen / ((performance.now() - t0) / 1000));
  gensCPU.push(nGen / cpuS(process.cpuUsage(c0)));
  await ctx.dispose();
}
const med = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
console.log(JSON.stringify({
  model: modelPath, threads, reps,
  prompt_tok_s: +med(prompts).toFixed(1), gen_tok_s: +med(gens).toFixed(1),
  prompt_tok_cpu_s: Math.round(med(promptsCPU)), gen_tok_cpu_s: +med(gensCPU).toFixed(1),
  prompt_all: prompts.map(Math.round), gen_all: gens.map(Math.round),
}));
await model.dispose();
await llama.dispose();
