# bash completion for nemokit: commands, families/stages/substages and images come from the
# installed plugins (`nemokit __complete` reads their manifests without running them); artifact
# references (NAME:latest, NAME:vN) from the artifact store.
_nemokit() {
  local cur prev
  # Artifact references hold ':', which bash splits words at: take the words without that split.
  if declare -F _get_comp_words_by_ref >/dev/null; then
    _get_comp_words_by_ref -n : cur prev
  else
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD-1]}
  fi
  case "$prev" in
    -r|--run|-b|--batch)
      local profiles
      profiles=$(nemokit profiles 2>/dev/null | sed -n 's/^\[\([^]]*\)\].*/\1/p')
      COMPREPLY=($(compgen -W "$profiles" -- "$cur")); return ;;
    -c|--config|-f|--file|--context|--out|--svg)
      COMPREPLY=($(compgen -f -- "$cur")); return ;;
    --platform)
      COMPREPLY=($(compgen -W "linux/amd64 linux/arm64" -- "$cur")); return ;;
  esac
  local words=() i
  for ((i = 1; i < COMP_CWORD; i++)); do
    case "${COMP_WORDS[i]}" in
      -c|--config|-r|--run|-b|--batch|-f|--file|--context|--tag|--out|--svg|--platform) ((i++)) ;;
      -*|*=*) ;;
      *) words+=("${COMP_WORDS[i]}") ;;
    esac
  done
  # Options: only those the command takes (its own and the global ones it accepts).
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$(nemokit __complete --options "${words[@]:0:1}" 2>/dev/null)" -- "$cur"))
    return
  fi
  COMPREPLY=($(compgen -W "$(nemokit __complete "${words[@]}" 2>/dev/null)" -- "$cur"))
  if declare -F __ltrim_colon_completions >/dev/null; then __ltrim_colon_completions "$cur"; fi
}
complete -F _nemokit nemokit
