#!/usr/bin/env node
// Runs GGUF files through a real llama.cpp: the prebuilt CPU build that node-llama-cpp (pinned in
// package.json / package-lock.json) ships. Every command prints one JSON object on stdout;
// diagnostics go to stderr. Used by secateur's tests (tests/model/test_llamacpp.cpp) and benchmarks.
//
//   node llamacpp.mjs version
//   node llamacpp.mjs generate MODEL.gguf [--tokens N] [--prompt-ids 1,2,3] [--ignore-eos]
//   node llamacpp.mjs logprobs MODEL.gguf --ids FILE
//   node llamacpp.mjs bench    MODEL.gguf [--prompt-tokens 512] [--gen-tokens 32] [--seed 0]
//   node llamacpp.mjs batch    JOBS.json   (several of the above in one process)
//   common options: --threads T (default 1), --kv-type f32|f16, --flash-attention auto|on|off
//                   (defaults: f32 + off for generate/logprobs, llama.cpp's f16 + auto for bench),
//                   --log-level error|warn|info|debug (llama.cpp's log, on stderr)
//
// generate: greedy (temperature 0) continuation of the prompt, by default the model's BOS alone
//   (the GGUF's tokenizer.ggml.bos_token_id, so models without a vocabulary, tokenizer.ggml.model =
//   "no_vocab", work through token ids). Stops before the EOS id (tokenizer.ggml.eos_token_id)
//   unless --ignore-eos, like `secateur generate --temp 0`. Prints the ids, and the text when the
//   model has a vocabulary.
// logprobs: FILE holds a JSON array of token ids, or an array of such windows. Each window is
//   evaluated from an empty KV cache; for position i the log-probability of token i+1 (natural log,
//   from llama.cpp's full-vocabulary softmax of the raw logits) is printed, n-1 per window.
// bench: a prompt of seeded random ids (the same ids as `secateur bench --seed S`: SplitMix64 +
//   xoshiro256**, uniform below the vocabulary size), then greedy decoding. Timed (wall clock,
//   around node-llama-cpp calls): prefill = evaluating the P prompt tokens in one batch (logits of
//   the last position only) and picking the greedy token; decode = G steps, each evaluating the
//   previous token and picking the next. llama.cpp's own counters (llama_perf_context: prompt eval
//   and eval time) are printed too. Model loading and context creation are timed separately.
//
// Why the options matter for speed: with gpu:false node-llama-cpp defaults to max(4, cores)
// threads; on a small shared machine the oversubscribed, spin-waiting ggml threadpool turns a 1 ms
// token into seconds. Threads are always set explicitly here (--threads, default 1).
import fs from "node:fs";
import path from "node:path";
import process from "node:process";

const USAGE = `usage: node llamacpp.mjs <version|generate|logprobs|bench|batch> [MODEL.gguf] [options]
  generate MODEL --tokens N [--prompt-ids 1,2,3] [--ignore-eos]
  logprobs MODEL --ids FILE        (JSON: [ids...] or [[ids...], ...])
  bench    MODEL --prompt-tokens P --gen-tokens G [--seed S] [--warmup]
  batch    JOBS.json               (JSON: [["generate", "m.gguf", "--tokens", "8"], ...])
  options: --threads T (1) --kv-type f32|f16 --flash-attention auto|on|off --context N --log-level L`;

class UsageError extends Error {}

function parseArgs(argv) {
  const flags = new Set(["ignore-eos", "warmup", "help"]);
  const out = {positional: [], opts: {}};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith("--")) {
      out.positional.push(a);
      continue;
    }
    let key = a.slice(2), value;
    const eq = key.indexOf("=");
    if (eq >= 0) {
      value = key.slice(eq + 1);
      key = key.slice(0, eq);
    } else if (flags.has(key)) {
      value = true;
    } else {
      if (i + 1 >= argv.length) throw new UsageError(`option --${key} needs a value`);
      value = argv[++i];
    }
    out.opts[key] = value;
  }
  return out;
}

function intOpt(opts, key, def, min = 0) {
  if (opts[key] === undefined) return def;
  const v = Number(opts[key]);
  if (!Number.isInteger(v) || v < min) throw new UsageError(`--${key} must be an integer >= ${min}, got '${opts[key]}'`);
  return v;
}

function parseIdList(s, what) {
  const ids = String(s).split(/[\s,]+/).filter((x) => x.length > 0).map(Number);
  for (const t of ids) if (!Number.isInteger(t) || t < 0) throw new UsageError(`${what}: '${s}' is not a list of token ids`);
  return ids;
}

// secateur's Rng (src/core/random.cpp): SplitMix64 seeding, xoshiro256**, unbiased below().
class Rng {
  constructor(seed) {
    const M = (1n << 64n) - 1n;
    let x = BigInt.asUintN(64, BigInt(seed));
    const splitmix = () => {
      x = (x + 0x9e3779b97f4a7c15n) & M;
      let z = x;
      z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M;
      z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M;
      return z ^ (z >> 31n);
    };
    this.s = [splitmix(), splitmix(), splitmix(), splitmix()];
  }
  nextU64() {
    const M = (1n << 64n) - 1n, s = this.s;
    const rotl = (v, k) => ((v << BigInt(k)) | (v >> BigInt(64 - k))) & M;
    const result = (rotl((s[1] * 5n) & M, 7) * 9n) & M;
    const t = (s[1] << 17n) & M;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
  }
  below(n) {
    const N = BigInt(n), MAX = (1n << 64n) - 1n;
    const limit = MAX - (MAX % N);
    let x;
    do x = this.nextU64();
    while (x >= limit);
    return Number(x % N);
  }
}

// ---------------------------------------------------------------------------------------------

let nlc = null;  // the node-llama-cpp module
const captured = {cpuBackend: null, perf: [], errors: []};

async function importNlc() {
  try {
    nlc = await import("node-llama-cpp");
  } catch (e) {
    const dir = path.dirname(new URL(import.meta.url).pathname);
    throw new Error(`cannot load node-llama-cpp (${e.message}); run 'npm ci' in ${dir} (scripts/setup.sh does)`);
  }
  // Models without a vocabulary (tokenizer.ggml.model = "no_vocab", what `secateur init` writes):
  // llama.cpp loads them and runs them on token ids, but LlamaModel.getWarnings(), which loadModel
  // calls, test-tokenizes a string, and llama.cpp aborts the process on a tokenize call without a
  // tokenizer (GGML_ASSERT, not an exception). Skip that one check for such models.
  const getWarnings = nlc.LlamaModel.prototype.getWarnings;
  nlc.LlamaModel.prototype.getWarnings = function () {
    const tok = this.fileInfo?.metadata?.tokenizer?.ggml?.model;
    if (tok === "no_vocab" || tok === "none") return this._fileInsights.getWarnings(this._modelPath);
    return getWarnings.call(this);
  };
  return nlc;
}

function logLevelOf(name) {
  const L = nlc.LlamaLogLevel;
  const map = {error: L.error, warn: L.warn, info: L.info, debug: L.debug};
  if (!(name in map)) throw new UsageError(`--log-level must be one of ${Object.keys(map).join(", ")}`);
  return map[name];
}

// One Llama (the loaded llama.cpp binding) per process; `batch` runs every job on it. The log
// level and thread limit come from the first call (batch: from all jobs).
let llamaInstance = null;
const logState = {wanted: 0};
const showRank = {error: 0, warn: 1, info: 2, debug: 3, log: 2, fatal: 0, disabled: -1};

async function openLlama(opts, {captureInfo = false, maxThreads = null} = {}) {
  await importNlc();
  const threads = intOpt(opts, "threads", 1, 1);
  const shown = opts["log-level"] ?? "error";
  logLevelOf(shown);  // validates
  if (llamaInstance) return {llama: llamaInstance, threads};
  logState.wanted = showRank[shown];
  llamaInstance = await nlc.getLlama({
    gpu: false,          // the CPU build: no CUDA/Vulkan/Metal probing
    build: "never",      // never compile llama.cpp from source; use the prebuilt binaries
    usePrebuiltBinaries: true,
    progressLogs: false,
    maxThreads: Math.max(threads, maxThreads ?? 1),
    // Info-level logs are needed to see which CPU variant ggml loads and llama.cpp's perf counters.
    // (ggml reports the backend it loads at its "log" level, which only the debug setting passes).
    logLevel: captureInfo ? logLevelOf("debug") : logLevelOf(shown),
    logger(level, message) {
      const m = /loaded CPU backend from (\S+)/.exec(message);
      if (m) captured.cpuBackend = m[1];
      if (/llama_perf_context_print/.test(message)) captured.perf.push(message.trim());
      if (level === "error" || level === "fatal") captured.errors.push(message.trim());
      if ((showRank[level] ?? 2) <= logState.wanted) process.stderr.write(`[llama.cpp ${level}] ${message.trimEnd()}\n`);
    },
  });
  return {llama: llamaInstance, threads};
}

function metadataValue(model, key) {
  let v = model.fileInfo?.metadata;
  for (const part of key.split(".")) {
    if (v == null) return undefined;
    v = v[part];
  }
  return v;
}

async function openModel(llama, file) {
  if (!file) throw new UsageError("missing MODEL.gguf");
  if (!fs.existsSync(file)) throw new Error(`${file}: no such file`);
  const t0 = performance.now();
  const model = await llama.loadModel({modelPath: path.resolve(file), gpuLayers: 0});
  const loadSeconds = (performance.now() - t0) / 1000;
  const arch = metadataValue(model, "general.architecture");
  const tokModel = metadataValue(model, "tokenizer.ggml.model");
  const hasVocab = tokModel !== undefined && tokModel !== "no_vocab" && tokModel !== "none";
  const num = (v) => (v === undefined || v === null ? null : Number(v));
  const bos = num(metadataValue(model, "tokenizer.ggml.bos_token_id")) ?? model.tokens.bos ?? null;
  const eos = num(metadataValue(model, "tokenizer.ggml.eos_token_id")) ?? model.tokens.eos ?? null;
  const embd = model.fileInfo?.tensorInfo?.find((t) => t.name === "token_embd.weight");
  const vocab = num(metadataValue(model, `${arch}.vocab_size`)) ?? (embd ? Number(embd.dimensions[1]) : null);
  return {
    model,
    info: {
      path: file,
      architecture: arch,
      description: model.typeDescription,  // llama_model_desc: "<arch> <size> <file type>"
      tokenizer: tokModel ?? null,
      has_vocab: hasVocab,
      vocab_size: vocab,
      bos_id: bos,
      eos_id: eos,
      load_seconds: loadSeconds,
    },
  };
}

// generate / logprobs default to exact f32 attention: K/V cache in f32 and no flash attention
// (ggml's CPU flash attention works in f16 whatever the cache type: log-probabilities then move by
// ~1e-2 instead of ~1e-6). bench defaults to llama.cpp's own defaults (f16 cache, flash "auto").
function contextOptions(opts, contextSize, batchSize, threads, defaultKv, defaultFa) {
  const kv = (opts["kv-type"] ?? defaultKv).toLowerCase();
  if (kv !== "f32" && kv !== "f16") throw new UsageError("--kv-type must be f32 or f16");
  const fa = opts["flash-attention"] ?? defaultFa;
  if (!["auto", "on", "off"].includes(fa)) throw new UsageError("--flash-attention must be auto, on or off");
  const o = {
    contextSize,
    batchSize,
    threads,  // a number: exactly this many, not node-llama-cpp's shared-pool default
    flashAttention: fa === "auto" ? "auto" : fa === "on",
    experimentalKvCacheKeyType: kv.toUpperCase(),
    experimentalKvCacheValueType: kv.toUpperCase(),
    ignoreMemorySafetyChecks: true,
  };
  return {o, kv, fa};
}

function versionInfo(llama) {
  const pkg = JSON.parse(fs.readFileSync(new URL("./node_modules/node-llama-cpp/package.json", import.meta.url)));
  return {
    node_llama_cpp: pkg.version,
    llama_cpp: llama.llamaCppRelease,  // {repo, release}: the llama.cpp tag the binaries were built from
    build_type: llama.buildType,        // "prebuilt" (shipped binaries) or "localBuild"
    cpu_backend: captured.cpuBackend ? path.basename(captured.cpuBackend) : null,
    system_info: llama.systemInfo,
    node: process.version,
  };
}

// ---------------------------------------------------------------------------------------------

async function cmdVersion(args) {
  const {llama} = await openLlama(args.opts, {captureInfo: true});
  // llama.cpp's log lines reach the logger asynchronously (a thread-safe callback into JS).
  for (let i = 0; i < 20 && !captured.cpuBackend; i++) await new Promise((r) => setTimeout(r, 5));
  return versionInfo(llama);
}

async function cmdGenerate(args) {
  const {llama, threads} = await openLlama(args.opts);
  const {model, info} = await openModel(llama, args.positional[0]);
  const n = intOpt(args.opts, "tokens", 32, 0);
  let prompt;
  if (args.opts["prompt-ids"] !== undefined) {
    prompt = parseIdList(args.opts["prompt-ids"], "--prompt-ids");
  } else {
    if (info.bos_id === null) throw new Error(`${info.path}: the model has no BOS id; give --prompt-ids`);
    prompt = [info.bos_id];
  }
  if (prompt.length === 0) throw new UsageError("the prompt is empty");
  const {o, kv, fa} = contextOptions(args.opts, intOpt(args.opts, "context", prompt.length + n + 1, 1),
                                     Math.max(prompt.length, 1), threads, "f32", "off");
  const ctx = await model.createContext(o);
  const seq = ctx.getSequence();
  const stopAtEos = !args.opts["ignore-eos"];
  const ids = [];
  let stoppedAtEos = false;
  const t0 = performance.now();
  if (n > 0) {
    for await (const t of seq.evaluate(prompt, {temperature: 0, yieldEogToken: true})) {
      if (stopAtEos && t === info.eos_id) {
        stoppedAtEos = true;
        break;
      }
      ids.push(t);
      if (ids.length >= n) break;
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  const out = {command: "generate", model: info, threads, kv_type: kv, flash_attention: fa,
               prompt_ids: prompt, ids, stopped_at_eos: stoppedAtEos, seconds};
  if (info.has_vocab) out.text = model.detokenize(ids);
  await ctx.dispose();
  await model.dispose();
  return out;
}

async function cmdLogprobs(args) {
  const {llama, threads} = await openLlama(args.opts);
  const {model, info} = await openModel(llama, args.positional[0]);
  let windows;
  if (args.opts.ids !== undefined) {
    let data;
    try {
      data = JSON.parse(fs.readFileSync(args.opts.ids, "utf8"));
    } catch (e) {
      throw new Error(`--ids ${args.opts.ids}: ${e.message}`);
    }
    windows = Array.isArray(data) && data.length > 0 && Array.isArray(data[0]) ? data : [data];
  } else if (args.opts["ids-list"] !== undefined) {
    windows = [parseIdList(args.opts["ids-list"], "--ids-list")];
  } else {
    throw new UsageError("logprobs needs --ids FILE (JSON array of ids, or of windows)");
  }
  let longest = 0;
  for (const w of windows) {
    if (!Array.isArray(w) || w.length < 2 || !w.every((t) => Number.isInteger(t) && t >= 0))
      throw new Error("--ids: every window must be an array of at least 2 token ids");
    longest = Math.max(longest, w.length);
  }
  const {o, kv, fa} = contextOptions(args.opts, intOpt(args.opts, "context", longest, 1), longest, threads, "f32", "off");
  const ctx = await model.createContext(o);
  const seq = ctx.getSequence();
  const result = [];
  let nll = 0, scored = 0, nonFinite = 0, vocabSeen = null;
  const t0 = performance.now();
  for (const w of windows) {
    await seq.clearHistory();
    const input = w.map((t, i) => (i + 1 < w.length ? [t, {generateNext: {probabilities: true}}] : t));
    const res = await seq.controlledEvaluate(input);
    const lp = [];
    for (let i = 0; i + 1 < w.length; i++) {
      const probs = res[i]?.next?.probabilities;
      if (!probs) throw new Error(`no probabilities returned for position ${i}`);
      vocabSeen ??= probs.size;
      const p = probs.get(w[i + 1]) ?? 0;
      const l = Math.log(p);
      if (Number.isFinite(l)) {
        nll -= l;
        scored++;
      } else {
        nonFinite++;
      }
      lp.push(Number.isFinite(l) ? l : null);
    }
    result.push(lp);
  }
  const seconds = (performance.now() - t0) / 1000;
  await ctx.dispose();
  await model.dispose();
  return {
    command: "logprobs", model: info, threads, kv_type: kv, flash_attention: fa,
    note: "logprobs[w][i] = ln p(window[w][i+1] | window[w][0..i]); llama.cpp's softmax over the full vocabulary (float32)",
    probabilities_per_position: vocabSeen, windows: windows.length, scored_tokens: scored,
    zero_probability_tokens: nonFinite, mean_nll: scored ? nll / scored : null, ppl: scored ? Math.exp(nll / scored) : null,
    seconds, logprobs: result,
  };
}

async function cmdBench(args) {
  const {llama, threads} = await openLlama(args.opts, {captureInfo: true});
  const {model, info} = await openModel(llama, args.positional[0]);
  const P = intOpt(args.opts, "prompt-tokens", 512, 1), G = intOpt(args.opts, "gen-tokens", 32, 0);
  const seed = intOpt(args.opts, "seed", 0, 0);
  if (!info.vocab_size) throw new Error(`${info.path}: unknown vocabulary size`);
  const rng = new Rng(seed);
  const prompt = Array.from({length: P}, () => rng.below(info.vocab_size));
  const {o, kv, fa} = contextOptions(args.opts, intOpt(args.opts, "context", P + G + 1, 1), P, threads, "f16", "auto");
  const run = async (seq) => {
    const gen = seq.evaluate(prompt, {temperature: 0, yieldEogToken: true});
    const t0 = performance.now();
    let r = await gen.next();  // prefill + the first greedy token
    const t1 = performance.now();
    for (let g = 0; g < G && !r.done; g++) r = await gen.next();  // G single-token decode steps
    const t2 = performance.now();
    await gen.return();
    return {prefill: (t1 - t0) / 1000, decode: (t2 - t1) / 1000};
  };
  if (args.opts.warmup) {  // on its own context, so that llama.cpp's counters cover the timed run only
    const w = await model.createContext(o);
    await run(w.getSequence());
    await w.dispose();
  }
  const tc = performance.now();
  const ctx = await model.createContext({...o, performanceTracking: true});
  const contextSeconds = (performance.now() - tc) / 1000;
  const t = await run(ctx.getSequence());
  captured.perf = [];
  await ctx.printTimings();
  for (let i = 0; i < 40 && captured.perf.length < 2; i++) await new Promise((r) => setTimeout(r, 5));  // async logs
  // llama_perf_context_print: "prompt eval time = X ms / N tokens" and "eval time = Y ms / M runs"
  const perf = {};
  for (const line of captured.perf) {
    let m = /prompt eval time =\s*([\d.]+) ms \/\s*(\d+) tokens/.exec(line);
    if (m) perf.prompt_eval = {ms: Number(m[1]), tokens: Number(m[2])};
    m = /\beval time =\s*([\d.]+) ms \/\s*(\d+) runs/.exec(line);
    if (m && !/prompt eval/.test(line)) perf.eval = {ms: Number(m[1]), runs: Number(m[2])};
  }
  await ctx.dispose();
  await model.dispose();
  return {
    command: "bench", model: info, ...versionInfo(llama), threads, kv_type: kv, flash_attention: fa,
    context_size: o.contextSize, batch_size: o.batchSize, warmup: !!args.opts.warmup,
    prompt: `seeded random token ids (seed ${seed}), as secateur bench`, prompt_head: prompt.slice(0, 8),
    prompt_tokens: P, gen_tokens: G,
    prefill_seconds: t.prefill, prefill_tokens_per_second: t.prefill > 0 ? P / t.prefill : 0,
    decode_seconds: t.decode, decode_tokens_per_second: t.decode > 0 && G > 0 ? G / t.decode : 0,
    context_seconds: contextSeconds,
    llama_perf: perf,
    timed: "prefill: evaluate the P prompt tokens in one batch (logits of the last position only) + greedy pick; " +
           "decode: G steps of evaluating 1 token + greedy pick; wall clock around node-llama-cpp calls " +
           "(llama_perf = llama.cpp's own counters for the same calls)",
  };
}

// batch FILE: a JSON array of jobs, each the argument list of one command (e.g.
// ["generate", "m.gguf", "--tokens", "8"]), run in this one process (llama.cpp is loaded once:
// ~1 s saved per job). Prints {"results": [...]}, a job's failure as {"error": ...} in its place.
async function cmdBatch(args) {
  const file = args.positional[0];
  if (!file) throw new UsageError("batch needs a JSON file of jobs");
  let jobs;
  try {
    jobs = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    throw new Error(`${file}: ${e.message}`);
  }
  if (!Array.isArray(jobs) || !jobs.every((j) => Array.isArray(j) && j.length > 0))
    throw new UsageError(`${file}: expected a JSON array of argument arrays`);
  const parsed = jobs.map((j) => parseArgs(j.map(String)));
  const maxThreads = Math.max(1, ...parsed.map((p) => intOpt(p.opts, "threads", 1, 1)));
  await openLlama({...args.opts, ...(parsed[0]?.opts ?? {})}, {captureInfo: true, maxThreads});
  const results = [];
  for (const p of parsed) {
    const cmd = p.positional.shift();
    try {
      if (!(cmd in commands) || cmd === "batch") throw new UsageError(`unknown command '${cmd}'`);
      results.push(await commands[cmd](p));
    } catch (e) {
      results.push({error: String(e.message ?? e)});
    }
  }
  return {command: "batch", results};
}

const commands = {version: cmdVersion, generate: cmdGenerate, logprobs: cmdLogprobs, bench: cmdBench, batch: cmdBatch};

// ---------------------------------------------------------------------------------------------

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const cmd = args.positional.shift();
  if (!cmd || args.opts.help) {
    process.stdout.write(USAGE + "\n");
    return cmd ? 0 : 2;
  }
  if (!(cmd in commands)) throw new UsageError(`unknown command '${cmd}'`);
  const out = await commands[cmd](args);
  process.stdout.write(JSON.stringify(out) + "\n");
  return out.results?.some((r) => r.error !== undefined) ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  async (e) => {
    // llama.cpp's own error lines (e.g. "tensor 'blk.1.attn_q.weight' has wrong shape") reach the
    // logger asynchronously: give them a moment before reporting.
    await new Promise((r) => setTimeout(r, 50));
    process.stderr.write(`llamacpp.mjs: ${e instanceof UsageError ? e.message + "\n" + USAGE : e.stack ?? e}\n`);
    process.stdout.write(JSON.stringify({error: String(e.message ?? e), llama_cpp_errors: captured.errors}) + "\n");
    process.exit(e instanceof UsageError ? 2 : 1);
  });
