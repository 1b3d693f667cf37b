# fish completion for aichat.
# Installed as share/fish/vendor_completions.d/aichat.fish.
#
# tests/docs.bats reads the `complete` lines below and fails when they
# disagree with `aichat --help` and `aichat chat --help`: write options as
# `-s X` and `-l NAME` (one `complete` line per option), and mark every
# option that takes a value with -x (a value, no file names).

# Models: a fixed list plus the alias names of the config file.
function __aichat_models
    printf '%s\tmodel\n' mock:echo openai:gpt-4o-mini openai:gpt-4o \
        anthropic:claude-sonnet-4-6 anthropic:claude-haiku-4-5 ollama:llama3.2
    set -l f $AICHAT_CONFIG
    if test -z "$f"
        set -l dir $XDG_CONFIG_HOME
        test -n "$dir"; or set dir $HOME/.config
        set f $dir/aichat/config.json
    end
    test -f "$f" -a -r "$f"; or return 0
    set -l text (string join ' ' <$f)
    set -l body (string match -r '"aliases"\s*:\s*\{[^}]*\}' -- "$text" |
        string replace -r '^"aliases"\s*:\s*\{' '')
    test -n "$body"; or return 0
    string match -ra '"[^"]+"\s*:\s*"[^"]*"' -- $body |
        string replace -r '^"([^"]+)".*' '$1\talias'
end

complete -c aichat -f

# aichat [--help] [--version] COMMAND
complete -c aichat -n '__fish_use_subcommand; and not __fish_seen_argument -s h -l help -s V -l version' -s h -l help -d 'show this help and exit'
complete -c aichat -n '__fish_use_subcommand; and not __fish_seen_argument -s h -l help -s V -l version' -s V -l version -d 'show the version and exit'
complete -c aichat -n '__fish_use_subcommand; and not __fish_seen_argument -s h -l help -s V -l version' -a chat -d 'chat with a model (one-shot; streams the answer)'

# aichat chat [options] [PROMPT...]
complete -c aichat -n '__fish_seen_subcommand_from chat' -s m -l model -x -a '(__aichat_models)' -d 'provider:model or an alias'
complete -c aichat -n '__fish_seen_subcommand_from chat' -s s -l system -x -d 'system prompt'
complete -c aichat -n '__fish_seen_subcommand_from chat' -s t -l temperature -x -d 'sampling temperature (0..2, default 0.7)'
complete -c aichat -n '__fish_seen_subcommand_from chat' -l max-tokens -x -d 'upper bound on tokens generated (1..16384)'
complete -c aichat -n '__fish_seen_subcommand_from chat' -l no-stream -d 'wait for the whole answer instead of streaming it'
complete -c aichat -n '__fish_seen_subcommand_from chat' -l json -d 'print one JSON object: content, model, token counts, finish_reason'
complete -c aichat -n '__fish_seen_subcommand_from chat' -l retries -x -d 'retries after 429, 5xx or a failed connection (0..10, default 2)'
complete -c aichat -n '__fish_seen_subcommand_from chat' -l timeout -x -d 'give up after this many seconds in all (0.001..86400, default 600)'
complete -c aichat -n '__fish_seen_subcommand_from chat' -s v -l verbose -d 'print token usage and timings to stderr'
complete -c aichat -n '__fish_seen_subcommand_from chat' -s h -l help -d 'show this help and exit'
