# bash completion for aichat                                 -*- shell-script -*-
#
# Installed as share/bash-completion/completions/aichat, or sourced from
# ~/.bashrc.  Works without the bash-completion package.
#
# tests/docs.bats reads the _aichat_* word lists below and fails when they
# disagree with `aichat --help` and `aichat CMD --help` for each command:
# keep one option per word, short and long names, and list in
# _aichat_CMD_argopts every option that takes a value.

_aichat_commands='batch chat history models rag serve usage'
_aichat_global_opts='-h --help -V --version'
_aichat_chat_opts='-m --model -s --system -t --temperature --max-tokens --no-stream --json --retries --timeout -c --continue --cid --no-log -i --interactive --raw -f --file -o --option --schema --thinking -v --verbose -h --help'
_aichat_chat_argopts='-m --model -s --system -t --temperature --max-tokens --retries --timeout --cid -f --file -o --option --schema --thinking'
_aichat_batch_opts='-o --output --resume -j --concurrency -m --model -s --system -t --temperature --max-tokens --text --unordered --rate --tokens-per-minute --retries --timeout -h --help'
_aichat_batch_argopts='-o --output -j --concurrency -m --model -s --system -t --temperature --max-tokens --rate --tokens-per-minute --retries --timeout'
_aichat_serve_opts='-m --model --host --allow-host -p --port --unix --api-key --api-key-file --insecure-no-auth --rate-limit --trust-proxy --workers --max-upstream --max-queue --cors-origin --max-body --timeout --drain-timeout --max-connections --max-connections-per-ip --client-timeout --request-timeout --log-format --cache-ttl --cache-size --batch-concurrency --retries --rag-search-timeout --rag-embed-timeout --log-conversations --redis --redis-prefix --redis-fail --redis-timeout -h --help --budget'
_aichat_serve_argopts='-m --model --host --allow-host -p --port --unix --api-key --api-key-file --rate-limit --trust-proxy --workers --max-upstream --max-queue --cors-origin --max-body --timeout --drain-timeout --max-connections --max-connections-per-ip --client-timeout --request-timeout --log-format --cache-ttl --cache-size --batch-concurrency --retries --rag-search-timeout --rag-embed-timeout --redis --redis-prefix --redis-fail --redis-timeout --budget'
_aichat_history_opts='-n --limit --json -h --help'
_aichat_history_argopts='-n --limit'
_aichat_history_actions='list show search rm'
_aichat_usage_opts='--since --by --json -h --help'
_aichat_usage_argopts='--since --by'
_aichat_models_opts='--json --timeout -h --help'
_aichat_models_argopts='--timeout'
_aichat_providers='openai anthropic ollama mock'
_aichat_rag_opts='-c --collection --chunk-size --overlap --include --exclude --prune --embed-model --max-file-size --language -v --verbose -k --top-k -m --model --no-stream --json -h --help'
_aichat_rag_argopts='-c --collection --chunk-size --overlap --include --exclude --embed-model --max-file-size --language -k --top-k -m --model'
_aichat_rag_subcommands='index search query list info rm eval'
_aichat_models='mock:echo openai:gpt-4o-mini openai:gpt-4o anthropic:claude-sonnet-4-6 anthropic:claude-haiku-4-5 ollama:llama3.2'

# Prints the alias names of the config file, one per line.  A light scan of
# the JSON, not a parser: enough for the usual "aliases": {...} object.
_aichat_config_aliases()
{
	local f=${AICHAT_CONFIG:-${XDG_CONFIG_HOME:-$HOME/.config}/aichat/config.json}
	local text body re_obj re_key
	[[ -f $f && -r $f ]] || return 0
	text=$(<"$f") || return 0
	text=${text//$'\n'/ }
	re_obj='"aliases"[[:space:]]*:[[:space:]]*\{([^}]*)\}'
	[[ $text =~ $re_obj ]] || return 0
	body=${BASH_REMATCH[1]}
	re_key='^[^"]*"([^"]+)"[[:space:]]*:[[:space:]]*"[^"]*"(.*)$'
	while [[ $body =~ $re_key ]]; do
		printf '%s\n' "${BASH_REMATCH[1]}"
		body=${BASH_REMATCH[2]}
	done
}

# Sets COMPREPLY to the words of $2 that start with $1, less what bash
# already holds before the last word-break character of $1 (':' in
# "openai:gpt", '=' in "--model=x"), since bash replaces only what follows.
_aichat_reply()
{
	local full=$1 pre='' c i
	mapfile -t COMPREPLY < <(compgen -W "$2" -- "$full")
	for ((i = ${#full} - 1; i >= 0; i--)); do
		c=${full:i:1}
		if [[ ${COMP_WORDBREAKS-:=} == *"$c"* ]]; then
			pre=${full:0:i+1}
			break
		fi
	done
	if [[ -n $pre ]]; then
		COMPREPLY=("${COMPREPLY[@]#"$pre"}")
	fi
}

# Completes the value of option $1 of command $_aichat_cmd; $2 is the
# text typed so far including any "--model=" or "-m" prefix, $3 the value
# part of it.
_aichat_value()
{
	local opt=$1 full=$2 prefix=${2%"$3"} w words=''
	case $_aichat_cmd:$opt in
	*:-m | *:--model)
		words="$_aichat_models $(_aichat_config_aliases)"
		;;
	rag:--embed-model)
		words="mock:embed openai:text-embedding-3-small openai:text-embedding-3-large ollama:nomic-embed-text $(_aichat_config_aliases)"
		;;
	serve:--log-format)
		words='json text'
		;;
	serve:--redis-fail)
		words='auto open closed'
		;;
	usage:--by)
		words='day model provider key'
		;;
	usage:--since)
		words='1d 7d 30d'
		;;
	rag:--language)
		words='en none'
		;;
	batch:-o | batch:--output | serve:--api-key-file)
		mapfile -t COMPREPLY < <(compgen -f -- "$3")
		return
		;;
	*)
		# TEXT, X, N, SECONDS: nothing to offer, and no file names.
		COMPREPLY=()
		return
		;;
	esac
	local list=''
	for w in $words; do
		list+="$prefix$w "
	done
	_aichat_reply "$full" "$list"
}

# Succeeds when option $1 (a short or long name) of command $_aichat_cmd
# takes a value.
_aichat_takes_value()
{
	local v=_aichat_${_aichat_cmd}_argopts
	[[ " ${!v} " == *" $1 "* ]]
}

_aichat()
{
	local -a words
	local cword cur prev i cmd='' w

	# The words up to the cursor.  From COMP_LINE, split at blanks only, so
	# that "--model=openai:gpt" stays one word; COMP_WORDS alone (tests,
	# other callers) is used as is.
	if [[ -n ${COMP_LINE-} ]]; then
		local line=${COMP_LINE:0:${COMP_POINT:-${#COMP_LINE}}}
		read -r -a words <<<"$line"
		[[ $line == *[[:space:]] || ${#words[@]} -eq 0 ]] && words+=('')
	else
		words=("${COMP_WORDS[@]:0:COMP_CWORD+1}")
	fi
	cword=$((${#words[@]} - 1))
	cur=${words[cword]}
	prev=''
	((cword > 0)) && prev=${words[cword - 1]}

	# The command is the first word after "aichat" that is not an option.
	for ((i = 1; i < cword; i++)); do
		case ${words[i]} in
		-*) ;;
		*) cmd=${words[i]}; break ;;
		esac
	done

	if [[ -z $cmd ]]; then
		case $prev in
		-h | --help | -V | --version) COMPREPLY=(); return ;;
		esac
		if [[ $cur == -* ]]; then
			_aichat_reply "$cur" "$_aichat_global_opts"
		else
			_aichat_reply "$cur" "$_aichat_commands"
		fi
		return
	fi

	case $cmd in
	chat | batch | history | models | rag | serve | usage) ;;
	*) COMPREPLY=(); return ;;
	esac
	_aichat_cmd=$cmd
	local optsvar=_aichat_${cmd}_opts

	# After "--", everything is prompt text; so is the value of an option.
	# nops counts the other words: operands such as history's action.
	local skip=0 nops=0 ci=$i
	for ((i = i + 1; i < cword; i++)); do
		w=${words[i]}
		if ((skip)); then
			skip=0
			continue
		fi
		case $w in
		--) [[ $cmd == batch ]] && mapfile -t COMPREPLY < <(compgen -f -- "$cur") || COMPREPLY=(); return ;;
		--*=*) ;;
		--*) _aichat_takes_value "$w" && skip=1 ;;
		-) ((nops++)) ;;
		-?*)
			# Bundled short options: a value-taking one ends the bundle.
			local k c
			for ((k = 1; k < ${#w}; k++)); do
				c=-${w:k:1}
				if _aichat_takes_value "$c"; then
					((k == ${#w} - 1)) && skip=1
					break
				fi
			done
			;;
		*) ((nops++)) ;;
		esac
	done
	if ((skip)); then
		# prev is "--model", "-m" or a bundle ending in "m".
		[[ $prev == --* ]] || prev=-${prev: -1}
		_aichat_value "$prev" "$cur" "$cur"
		return
	fi

	case $cur in
	--*=*)
		local opt=${cur%%=*}
		if _aichat_takes_value "$opt"; then
			_aichat_value "$opt" "$cur" "${cur#*=}"
		else
			COMPREPLY=()
		fi
		;;
	--*)
		_aichat_reply "$cur" "${!optsvar}"
		;;
	-?*)
		# "-m" alone: offer the option itself; "-vmopen": a value.
		local k c
		for ((k = 1; k < ${#cur} - 1; k++)); do
			c=-${cur:k:1}
			if _aichat_takes_value "$c"; then
				_aichat_value "$c" "$cur" "${cur:k+1}"
				return
			fi
		done
		_aichat_reply "$cur" "${!optsvar}"
		;;
	-)
		_aichat_reply "$cur" "${!optsvar}"
		;;
	*)
		# chat: prompt words, nothing to complete; batch: the input file;
		# history: the action, then ids or words; models: one provider.
		if [[ $cmd == batch ]]; then
			mapfile -t COMPREPLY < <(compgen -f -- "$cur")
		elif [[ $cmd == history ]] && ((nops == 0)); then
			_aichat_reply "$cur" "$_aichat_history_actions"
		elif [[ $cmd == models ]] && ((nops == 0)); then
			_aichat_reply "$cur" "$_aichat_providers"
		elif [[ $cmd == rag ]] && ((nops == 0)); then
			_aichat_reply "$cur" "$_aichat_rag_subcommands"
		elif [[ $cmd == rag && ${words[ci + 1]-} == @(index|eval) ]]; then
			mapfile -t COMPREPLY < <(compgen -f -- "$cur")
		else
			COMPREPLY=()
		fi
		;;
	esac
}

complete -F _aichat aichat
