# fish completion for aichat.
# Installed as share/fish/vendor_completions.d/aichat.fish.
#
# tests/docs.bats reads the `complete` lines below and fails when they
# disagree with `aichat --help` and `aichat CMD --help`: write options as
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
complete -c aichat -n '__fish_use_subcommand; and not __fish_seen_argument -s h -l help -s V -l version' -a batch -d 'run many prompts from JSONL, several at a time, one result per line'
complete -c aichat -n '__fish_use_subcommand; and not __fish_seen_argument -s h -l help -s V -l version' -a chat -d 'chat with a model (one-shot; streams the answer)'
complete -c aichat -n '__fish_use_subcommand; and not __fish_seen_argument -s h -l help -s V -l version' -a history -d 'list, show, search and remove logged conversations'
complete -c aichat -n '__fish_use_subcommand; and not __fish_seen_argument -s h -l help -s V -l version' -a models -d 'list the models of the configured providers, and the aliases'
complete -c aichat -n '__fish_use_subcommand; and not __fish_seen_argument -s h -l help -s V -l version' -a rag -d 'index local documents, search them, answer with sources'
complete -c aichat -n '__fish_use_subcommand; and not __fish_seen_argument -s h -l help -s V -l version' -a serve -d 'serve the same features over HTTP (JSON, SSE, OpenAI-compatible)'
complete -c aichat -n '__fish_use_subcommand; and not __fish_seen_argument -s h -l help -s V -l version' -a usage -d 'tokens and cost of the logged exchanges, by day, model, provider or key'

# aichat chat [options] [PROMPT...]
complete -c aichat -n '__fish_seen_subcommand_from chat' -s m -l model -x -a '(__aichat_models)' -d 'provider:model or an alias (default: $AICHAT_MODEL, then the config file, then openai:gpt-4o-mini)'
complete -c aichat -n '__fish_seen_subcommand_from chat' -s s -l system -x -d 'system prompt'
complete -c aichat -n '__fish_seen_subcommand_from chat' -s t -l temperature -x -d 'sampling temperature (0..2, default 0.7)'
complete -c aichat -n '__fish_seen_subcommand_from chat' -l max-tokens -x -d 'upper bound on tokens generated (1..16384)'
complete -c aichat -n '__fish_seen_subcommand_from chat' -l no-stream -d 'wait for the whole answer instead of streaming it'
complete -c aichat -n '__fish_seen_subcommand_from chat' -l json -d 'print one JSON object: content, model, token counts, finish_reason'
complete -c aichat -n '__fish_seen_subcommand_from chat' -l retries -x -d 'retries after a failed connection, 408, 429, 500, 502-504 or 529 (0..10, default 2)'
complete -c aichat -n '__fish_seen_subcommand_from chat' -l timeout -x -d 'give up after this many seconds in all (0.001..86400, default 600)'
complete -c aichat -n '__fish_seen_subcommand_from chat' -s c -l continue -d 'continue the last conversation of the log'
complete -c aichat -n '__fish_seen_subcommand_from chat' -l cid -x -d "continue conversation ID (see 'aichat history list')"
complete -c aichat -n '__fish_seen_subcommand_from chat' -l no-log -d 'do not record this exchange in the conversation log'
complete -c aichat -n '__fish_seen_subcommand_from chat' -s i -l interactive -d 'chat interactively (the default on a terminal with no prompt)'
complete -c aichat -n '__fish_seen_subcommand_from chat' -l raw -d 'print the answer exactly as streamed, without markdown styles'
complete -c aichat -n '__fish_seen_subcommand_from chat' -s f -l file -r -F -d 'add a file: text after a header line, PNG/JPEG/GIF/WebP as an image; - is stdin'
complete -c aichat -n '__fish_seen_subcommand_from chat' -s o -l option -x -d 'pass a provider parameter as KEY=VALUE, VALUE as JSON if it parses'
complete -c aichat -n '__fish_seen_subcommand_from chat' -l schema -r -F -d 'answer as JSON following this JSON Schema (or the file holding it)'
complete -c aichat -n '__fish_seen_subcommand_from chat' -l thinking -x -d 'let an Anthropic model think with a budget of N tokens (1024..1000000)'
complete -c aichat -n '__fish_seen_subcommand_from chat' -s v -l verbose -d 'print token usage and timings to stderr'
complete -c aichat -n '__fish_seen_subcommand_from chat' -s h -l help -d 'show this help and exit'

# aichat batch [options] [FILE|-]
complete -c aichat -n '__fish_seen_subcommand_from batch' -s o -l output -r -F -d 'write results to FILE instead of stdout'
complete -c aichat -n '__fish_seen_subcommand_from batch' -l resume -d 'with -o: skip ids already answered in FILE, retry the failed ones'
complete -c aichat -n '__fish_seen_subcommand_from batch' -s j -l concurrency -x -d 'items in flight at once (1..1000, default 10)'
complete -c aichat -n '__fish_seen_subcommand_from batch' -s m -l model -x -a '(__aichat_models)' -d 'model for items that name none (default: as for chat)'
complete -c aichat -n '__fish_seen_subcommand_from batch' -s s -l system -x -d 'system prompt for items that have none'
complete -c aichat -n '__fish_seen_subcommand_from batch' -s t -l temperature -x -d 'temperature for items that set none (0..2, default 0.7)'
complete -c aichat -n '__fish_seen_subcommand_from batch' -l max-tokens -x -d 'max_tokens for items that set none (1..16384)'
complete -c aichat -n '__fish_seen_subcommand_from batch' -l text -d 'each input line is a prompt; its line number is its id'
complete -c aichat -n '__fish_seen_subcommand_from batch' -l unordered -d 'write results as they finish instead of in input order'
complete -c aichat -n '__fish_seen_subcommand_from batch' -l rate -x -d 'start at most this many requests, e.g. 60/minute'
complete -c aichat -n '__fish_seen_subcommand_from batch' -l tokens-per-minute -x -d 'pause starting items while the last minute used more tokens (1..100000000)'
complete -c aichat -n '__fish_seen_subcommand_from batch' -l retries -x -d 'retries per item after a failed connection, 408, 429, 500, 502-504 or 529 (0..10, default 2)'
complete -c aichat -n '__fish_seen_subcommand_from batch' -l timeout -x -d 'give up on an item after this many seconds (0.001..86400, default 600)'
complete -c aichat -n '__fish_seen_subcommand_from batch' -s h -l help -d 'show this help and exit'
complete -c aichat -n '__fish_seen_subcommand_from batch' -F

# aichat history list|show|search|rm [options] [ID...|TEXT...]
complete -c aichat -n '__fish_seen_subcommand_from history; and not __fish_seen_subcommand_from list show search rm' -a 'list show search rm'
complete -c aichat -n '__fish_seen_subcommand_from history' -s n -l limit -x -d 'show at most N conversations (1..100000, default 20)'
complete -c aichat -n '__fish_seen_subcommand_from history' -l json -d 'print JSON instead of text'
complete -c aichat -n '__fish_seen_subcommand_from history' -s h -l help -d 'show this help and exit'

# aichat models [options] [PROVIDER]
complete -c aichat -n '__fish_seen_subcommand_from models; and not __fish_seen_subcommand_from openai anthropic ollama mock' -a 'openai anthropic ollama mock' -d 'provider'
complete -c aichat -n '__fish_seen_subcommand_from models' -l json -d 'print one JSON object: models, aliases and errors'
complete -c aichat -n '__fish_seen_subcommand_from models' -l timeout -x -d 'time each provider has to answer (0.001..600, default 5)'
complete -c aichat -n '__fish_seen_subcommand_from models' -s h -l help -d 'show this help and exit'

# aichat rag SUBCOMMAND [options] [ARGS...]
complete -c aichat -n '__fish_seen_subcommand_from rag; and not __fish_seen_subcommand_from index search query list info rm eval' -a 'index search query list info rm eval' -d 'subcommand'
complete -c aichat -n '__fish_seen_subcommand_from rag' -s c -l collection -x -d 'the collection: 1..64 of A-Z a-z 0-9 . _ - (default default)'
complete -c aichat -n '__fish_seen_subcommand_from rag' -l chunk-size -x -d 'index: bytes per chunk, for a new collection or to re-chunk (100..100000, default 1000)'
complete -c aichat -n '__fish_seen_subcommand_from rag' -l overlap -x -d 'index: bytes a chunk repeats of the one before (0..10000, default 100)'
complete -c aichat -n '__fish_seen_subcommand_from rag' -l include -x -d 'index: only files whose name or path matches (repeatable)'
complete -c aichat -n '__fish_seen_subcommand_from rag' -l exclude -x -d 'index: skip files and directories that match (repeatable)'
complete -c aichat -n '__fish_seen_subcommand_from rag' -l prune -d 'index: forget documents whose file is gone'
complete -c aichat -n '__fish_seen_subcommand_from rag' -l embed-model -x -a 'mock:embed openai:text-embedding-3-small' -d 'index: provider:model that embeds chunks for hybrid search (fixed per collection)'
complete -c aichat -n '__fish_seen_subcommand_from rag' -l max-file-size -x -d 'index: skip files larger than this, and files whose text is (a .gz decompressed) (1..1099511627776, default 33554432)'
complete -c aichat -n '__fish_seen_subcommand_from rag' -l language -x -a 'en none' -d 'index: en (stem English words, rank without stop words) or none, for a new collection or to re-index one (default en)'
complete -c aichat -n '__fish_seen_subcommand_from rag' -s v -l verbose -d 'index: list each file skipped or indexed with a warning, and why; eval: each question with its top files'
complete -c aichat -n '__fish_seen_subcommand_from rag' -s k -l top-k -x -d 'search, query: passages to retrieve (1..20, default 5); eval: the k of Recall@k (1..1000, default 10)'
complete -c aichat -n '__fish_seen_subcommand_from rag' -s m -l model -x -a '(__aichat_models)' -d 'query: provider:model or an alias (default: as for chat)'
complete -c aichat -n '__fish_seen_subcommand_from rag' -l no-stream -d 'query: wait for the whole answer instead of streaming it'
complete -c aichat -n '__fish_seen_subcommand_from rag' -l json -d 'print JSON for scripts'
complete -c aichat -n '__fish_seen_subcommand_from rag' -s h -l help -d 'show this help and exit'
complete -c aichat -n '__fish_seen_subcommand_from index eval' -F

# aichat serve [options]
complete -c aichat -n '__fish_seen_subcommand_from serve' -s m -l model -x -a '(__aichat_models)' -d 'model for requests that name none (default: $AICHAT_MODEL, then the config file; without any, such a request is refused)'
complete -c aichat -n '__fish_seen_subcommand_from serve' -l host -x -d 'address to listen on (default 127.0.0.1)'
complete -c aichat -n '__fish_seen_subcommand_from serve' -l allow-host -x -d 'without API keys, also answer requests whose Host is HOST (repeatable; loopback names always)'
complete -c aichat -n '__fish_seen_subcommand_from serve' -s p -l port -x -d 'port to listen on; 0 picks a free one (0..65535, default 8000)'
complete -c aichat -n '__fish_seen_subcommand_from serve' -l unix -r -F -d 'listen on the unix socket PATH (mode 0600); alone, instead of TCP unless --host or --port is given'
complete -c aichat -n '__fish_seen_subcommand_from serve' -l api-key -x -d 'accept this API key (repeatable; also $AICHAT_API_KEYS, comma-separated)'
complete -c aichat -n '__fish_seen_subcommand_from serve' -l api-key-file -r -F -d 'accept the API keys in FILE, one per line'
complete -c aichat -n '__fish_seen_subcommand_from serve' -l insecure-no-auth -d 'allow a non-loopback address without any API key'
complete -c aichat -n '__fish_seen_subcommand_from serve' -l rate-limit -x -d 'requests per client, e.g. 10/minute (keyed by API key, else address)'
complete -c aichat -n '__fish_seen_subcommand_from serve' -l trust-proxy -x -d 'take the client address of a request from ADDR, a proxy such as nginx, from the last item of its X-Forwarded-For (repeatable)'
complete -c aichat -n '__fish_seen_subcommand_from serve' -l workers -x -d 'event loops, each on its own thread, serving as one server (also $AICHAT_WORKERS; default: the number of online cores, at most 64) (1..64)'
complete -c aichat -n '__fish_seen_subcommand_from serve' -l max-upstream -x -d 'concurrent upstream calls; 0 = no bound (0..1000000, default 0)'
complete -c aichat -n '__fish_seen_subcommand_from serve' -l max-queue -x -d 'requests waiting for an upstream slot, or database writes waiting, before 503 (0..1000000, default 100)'
complete -c aichat -n '__fish_seen_subcommand_from serve' -l cors-origin -x -d 'allow browser calls from ORIGIN (or *); off by default'
complete -c aichat -n '__fish_seen_subcommand_from serve' -l max-body -x -d 'largest request body; larger is 413 (1..1073741824, default 1048576)'
complete -c aichat -n '__fish_seen_subcommand_from serve' -l timeout -x -d 'upstream time limit for non-streaming calls; then 504 (0.001..86400, default 30)'
complete -c aichat -n '__fish_seen_subcommand_from serve' -l drain-timeout -x -d 'on SIGTERM, time given to requests in flight (0..3600, default 30)'
complete -c aichat -n '__fish_seen_subcommand_from serve' -l max-connections -x -d 'simultaneous client connections (1..1000000, default 10000)'
complete -c aichat -n '__fish_seen_subcommand_from serve' -l max-connections-per-ip -x -d 'simultaneous connections from one address; 0 = no cap (0..1000000, default 1000)'
complete -c aichat -n '__fish_seen_subcommand_from serve' -l client-timeout -x -d 'drop a client idle or slower than this (1..3600, default 30)'
complete -c aichat -n '__fish_seen_subcommand_from serve' -l request-timeout -x -d 'time a client has to send a whole request, head and body; then 408 (0.5..3600, default 30)'
complete -c aichat -n '__fish_seen_subcommand_from serve' -l log-format -x -a 'json text' -d 'request log on stderr: json or text (default json)'
complete -c aichat -n '__fish_seen_subcommand_from serve' -l cache-ttl -x -d 'lifetime of a cached answer (0..86400, default 300)'
complete -c aichat -n '__fish_seen_subcommand_from serve' -l cache-size -x -d 'answers kept in the cache; 0 turns it off (0..1000000, default 1000)'
complete -c aichat -n '__fish_seen_subcommand_from serve' -l batch-concurrency -x -d 'upstream calls at once for one POST /batch (1..100, default 10)'
complete -c aichat -n '__fish_seen_subcommand_from serve' -l retries -x -d 'retries after a failed connection, 408, 429, 500, 502-504 or 529 (0..10, default 2)'
complete -c aichat -n '__fish_seen_subcommand_from serve' -l rag-search-timeout -x -d 'time limit of the search of /rag/query and /rag/search; then 504 (0.001..3600, default 2)'
complete -c aichat -n '__fish_seen_subcommand_from serve' -l rag-embed-timeout -x -d 'time limit for embedding a /rag query; then BM25 alone (0.001..3600, default 5)'
complete -c aichat -n '__fish_seen_subcommand_from serve' -l log-conversations -d 'record each POST /conversation in the conversation log'
complete -c aichat -n '__fish_seen_subcommand_from serve' -l redis -x -d 'share rate limits, the cache and background jobs with other replicas through Redis at URL: redis://[:PASSWORD@]HOST[:PORT][/DB] or unix:///PATH (also $AICHAT_REDIS_URL)'
complete -c aichat -n '__fish_seen_subcommand_from serve' -l redis-prefix -x -d 'namespace of every Redis key, so deployments can share one Redis (default aichat:)'
complete -c aichat -n '__fish_seen_subcommand_from serve' -l redis-fail -x -a 'auto open closed' -d 'rate limits while Redis is down: open (allow) or closed (503); default closed for API keys, open for addresses (default auto)'
complete -c aichat -n '__fish_seen_subcommand_from serve' -l redis-timeout -x -d 'longest wait for a Redis reply; then Redis counts as down (0.001..60, default 0.1)'
complete -c aichat -n '__fish_seen_subcommand_from serve' -l budget -x -d 'key:N=AMOUNT/day: the US dollars API key N may spend a UTC day, then 429 until midnight UTC'
complete -c aichat -n '__fish_seen_subcommand_from serve' -s h -l help -d 'show this help and exit'

# aichat usage [--since DATE] [--by GROUP] [--json]
complete -c aichat -n '__fish_seen_subcommand_from usage' -l since -x -a '1d 7d 30d' -d 'count from DATE on: YYYY-MM-DD, or Nd for the last N days, today included (UTC days)'
complete -c aichat -n '__fish_seen_subcommand_from usage' -l by -x -a 'day model provider key' -d 'one row per day, model, provider or key'
complete -c aichat -n '__fish_seen_subcommand_from usage' -l json -d 'print JSON instead of a table'
complete -c aichat -n '__fish_seen_subcommand_from usage' -s h -l help -d 'show this help and exit'
