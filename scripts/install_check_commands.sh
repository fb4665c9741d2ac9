# The commands scripts/check_install.sh compares byte for byte: run by the build tree's binary on the build machine,
# and by the tarball's and the wheel's inside fresh Debian roots. Sourced (POSIX sh); run from the folder that holds
# models/ (minilm: the real all-MiniLM-L6-v2 weights; tiny-mlm: a fixture masked-LM model with models/vocab.txt).
#   run_commands BINARY NAME    → $out/NAME-*.txt / .json
run_commands() {
  binary=$1
  name=$2
  "$binary" --version > "$out/$name-version.txt"
  "$binary" info --model models/minilm > "$out/$name-info.txt"
  "$binary" embed --model models/minilm --json --quiet "The capital of France is Paris." "Ein Satz auf Deutsch, mit Ümlauten." > "$out/$name-embed.json"
  "$binary" embed --model models/minilm --pooling mean --normalize --dtype int8 --json --quiet "A man is eating food." > "$out/$name-embed-int8.json"
  "$binary" similarity --model models/minilm --json --quiet "A man is eating food." "Someone eats." "It rains." > "$out/$name-similarity.json"
  "$binary" fill-mask --model models/tiny-mlm --vocab models/vocab.txt --top-k 3 --json --quiet "Word5 Word6 [MASK]" "[MASK] Word9" > "$out/$name-fill-mask.json"
  "$binary" tokenize --model models/minilm "Tokenize this, please." > "$out/$name-tokenize.txt"
}
