// Command line: `macslot completion`, shell completion scripts generated from the commands and their options.

/** One command and its options, as the completion scripts need them. */
export interface CompletionCommand {
  readonly name: string;
  readonly options: readonly { readonly long: string; readonly short?: string; readonly value: boolean }[];
}

/** The shells `macslot completion` writes scripts for. */
export type Shell = 'bash' | 'zsh' | 'fish';

const GLOBAL = ['--help', '-h', '--version', '-V'];

function flags(c: CompletionCommand): string[] {
  return c.options.flatMap((o) => [`--${o.long}`, ...(o.short !== undefined ? [`-${o.short}`] : [])]);
}

function bash(commands: readonly CompletionCommand[]): string {
  const cases = commands.map((c) => {
    const valued = c.options.filter((o) => o.value).flatMap((o) => [`--${o.long}`, ...(o.short !== undefined ? [`-${o.short}`] : [])]);
    return `    ${c.name}) opts='${flags(c).join(' ')}'; valued='${valued.join(' ')}' ;;`;
  });
  return `# bash completion for macslot
_macslot() {
  local cur prev opts valued
  cur="\${COMP_WORDS[COMP_CWORD]}"
  prev="\${COMP_WORDS[COMP_CWORD-1]}"
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W '${[...commands.map((c) => c.name), ...GLOBAL].join(' ')}' -- "$cur"))
    return
  fi
  case "\${COMP_WORDS[1]}" in
${cases.join('\n')}
    *) return ;;
  esac
  if [ "\${COMP_WORDS[1]}" = completion ]; then
    COMPREPLY=($(compgen -W 'bash zsh fish' -- "$cur"))
  elif [[ " $valued " == *" $prev "* || "$cur" != -* ]]; then
    COMPREPLY=($(compgen -f -- "$cur"))
  else
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
  fi
}
complete -o filenames -F _macslot macslot
`;
}

function zsh(commands: readonly CompletionCommand[]): string {
  const cases = commands.map((c) => {
    const specs = c.options.map((o) => {
      const arg = o.value ? ':value:_files' : '';
      return o.short !== undefined
        ? `'(-${o.short} --${o.long})'{-${o.short},--${o.long}}'[${o.long}]${arg}'`
        : `'--${o.long}[${o.long}]${arg}'`;
    });
    const positional = c.name === 'completion' ? "'1:shell:(bash zsh fish)'" : "'*:file:_files'";
    return `    ${c.name}) _arguments ${[...specs, positional].join(' ')} ;;`;
  });
  return `#compdef macslot
# zsh completion for macslot
_macslot() {
  if (( CURRENT == 2 )); then
    compadd -- ${[...commands.map((c) => c.name), ...GLOBAL].join(' ')}
    return
  fi
  local cmd=\${words[2]}
  shift words
  (( CURRENT-- ))
  case $cmd in
${cases.join('\n')}
  esac
}
if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
  _macslot "$@"
else
  compdef _macslot macslot
fi
`;
}

function fish(commands: readonly CompletionCommand[]): string {
  const names = commands.map((c) => c.name).join(' ');
  const lines = [
    '# fish completion for macslot',
    'complete -c macslot -f',
    `complete -c macslot -n 'not __fish_seen_subcommand_from ${names}' -a '${names}'`,
    `complete -c macslot -n 'not __fish_seen_subcommand_from ${names}' -s V -l version -d 'print the version'`,
  ];
  for (const c of commands) {
    const when = `-n '__fish_seen_subcommand_from ${c.name}'`;
    if (c.name === 'completion') lines.push(`complete -c macslot ${when} -a 'bash zsh fish'`);
    else if (c.name !== 'demo' && c.name !== 'bench' && c.name !== 'serve') lines.push(`complete -c macslot ${when} -F`);
    for (const o of c.options)
      lines.push(`complete -c macslot ${when}${o.short !== undefined ? ` -s ${o.short}` : ''} -l ${o.long}${o.value ? ' -r -F' : ''}`);
  }
  return `${lines.join('\n')}\n`;
}

/** Returns the completion script for `shell` covering `commands`. */
export function completionScript(shell: Shell, commands: readonly CompletionCommand[]): string {
  return shell === 'bash' ? bash(commands) : shell === 'zsh' ? zsh(commands) : fish(commands);
}
