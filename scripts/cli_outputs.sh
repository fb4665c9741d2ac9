#!/usr/bin/env bash
# Runs a fixed set of megatron-bert commands on the committed fixtures and writes each one's standard output, standard
# error (paths and timings removed) and exit status into OUTDIR, so that two builds can be diffed: a refactoring that
# must not change behaviour shows no difference.
#
#   scripts/cli_outputs.sh /tmp/before-binary /tmp/before     # e.g. a build of the previous commit
#   scripts/cli_outputs.sh .build/release/megatron-bert /tmp/after
#   diff -r /tmp/before /tmp/after && echo identical
set -uo pipefail
bin=$(realpath "$1")
out=$2
cd "$(dirname "$0")/.."
fx=Tests/MegatronBERTTests/Fixtures
tasks=$fx/tasks
rm -rf "$out" && mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export MEGATRON_BERT_CACHE="$work/cache" MEGATRON_BERT_CUDA_PATH="$work/no-cuda"

n=0
run() {  # run NAME ARGS…: one case
  local name=$1; shift
  n=$((n + 1))
  "$bin" "$@" >"$out/$name.out" 2>"$out/$name.err" </dev/null
  echo $? >"$out/$name.status"
  sed -i -e "s#$work#WORK#g" -e "s#$PWD#REPO#g" "$out/$name.out" "$out/$name.err"
}

run help --help
for command in fill-mask nsp embed similarity classify ner qa multiple-choice info tokenize forward bench bench-train test-ops tasks finetune convert inspect download serve; do
  run "help-$command" "$command" --help
done
pre=$tasks/pretraining
run fill-mask fill-mask --model "$pre" --device cpu --json "Paris is the [MASK] of France." "A [MASK] and a [MASK]."
run fill-mask-table fill-mask --model "$pre" --device cpu --top-k 3 "Paris is the [MASK] of France."
run fill-mask-targets fill-mask --model "$pre" --device cpu --json --targets capital,city "Paris is the [MASK] of France."
run fill-mask-no-mask fill-mask --model "$pre" --device cpu "no mask here"
run fill-mask-int8 fill-mask --model "$pre" --device cpu --dtype int8 --json "Paris is the [MASK] of France."
run fill-mask-bf16 fill-mask --model "$pre" --device cpu --dtype bf16 --json "Paris is the [MASK] of France."
run nsp nsp --model "$pre" --device cpu --json "The cat sat." "It was tired."
run embed embed --model "$tasks/embedding" --device cpu --json "first text" "a second, longer text to embed"
run embed-mean-normalize embed --model "$tasks/embedding" --device cpu --pooling mean --normalize --json "first text"
run similarity similarity --model "$tasks/embedding" --device cpu --json "a cat" "a dog" "a car"
run classify classify --model "$tasks/classification" --device cpu --json --top-k 2 "I loved it" "I hated it"
run classify-multilabel classify --model "$tasks/multilabel" --device cpu --json "some text"
run ner ner --model "$tasks/ner" --device cpu --json "Angela Merkel visited Paris in May."
run ner-none ner --model "$tasks/ner" --device cpu --aggregation none --json "Angela Merkel visited Paris."
run qa qa --model "$tasks/qa" --device cpu --json --question "Where does she live?" --context "She lives in Berlin and works in Paris."
run multiple-choice multiple-choice --model "$tasks/multiple-choice" --device cpu --json --prompt "The sky is" blue green
run info info --model "$tasks/classification" --json
run info-table info --model "$pre"
run cuda-int8 fill-mask --model "$pre" --device cuda --dtype int8 "Paris is the [MASK] of France."
run cuda-missing fill-mask --model "$pre" --device cuda "Paris is the [MASK] of France."
run tokenize tokenize --vocab vocab/megatron-bert-cased-vocab.txt --pair "And a pair." "Paris is the [MASK] of France."
printf '{"text": "one [MASK] line", "id": 1}\n{"text": "no mask", "id": 2}\n{"text": "two [MASK] [MASK]"}\n' >"$work/lines.jsonl"
run jsonl-record fill-mask --model "$pre" --device cpu --json --input "$work/lines.jsonl" --on-error record
run jsonl-stop fill-mask --model "$pre" --device cpu --json --input "$work/lines.jsonl"
printf '{"text": "alpha beta"}\n{"text": "gamma"}\n' >"$work/embed.jsonl"
run jsonl-embed embed --model "$tasks/embedding" --device cpu --json --input "$work/embed.jsonl"
printf '{"input_ids": [[2, 7, 4, 3], [2, 9, 3, 0]], "attention_mask": [[1, 1, 1, 1], [1, 1, 1, 0]]}' >"$work/batch.json"
for dtype in fp32 fp16 bf16 int8; do
  run "forward-$dtype" forward --model "$pre" --device cpu --dtype "$dtype" --input "$work/batch.json" --output "$work/forward-$dtype.safetensors"
  cp "$work/forward-$dtype.safetensors" "$out/forward-$dtype.safetensors" 2>/dev/null
done
run inspect inspect "$fx/megatron/ngc.zip"
run convert convert "$fx/megatron/ngc.zip" --output "$work/converted"
(cd "$work/converted" 2>/dev/null && for f in *; do cp "$f" "$out/converted-$f"; done)
run bench-bad-point bench --random-weights --points 0x8
run tasks tasks --json
printf '{"prompt": "The sky is", "choices": "blue"}\n{"question": "Where?"}\n' >"$work/bad-fields.jsonl"
run jsonl-bad-choices multiple-choice --model "$tasks/multiple-choice" --device cpu --json --input "$work/bad-fields.jsonl" --on-error record
run jsonl-bad-qa qa --model "$tasks/qa" --device cpu --json --input "$work/bad-fields.jsonl" --on-error record
echo "$n cases written to $out"
