/*
 * playground.js - the chat page of `aichat serve` (GET /).
 *
 * It speaks to this server's own API, as any app would: /v1/models for
 * the model picker, /v1/chat/completions (streamed) to chat,
 * /rag/collections and /rag/query (streamed, its metadata event carrying
 * the sources) to ask documents.  The conversation lives in localStorage,
 * an API key in sessionStorage (this tab only).
 *
 * Invariant: text from a model, a document or the server is put in the
 * page with textContent and createElement only, never parsed as HTML; the
 * markdown renderer below builds nodes.  The page's CSP forbids inline
 * script besides, so a slip would still run nothing.
 */
'use strict';
(function () {
  const $ = (id) => document.getElementById(id);
  const STORE = 'aichat.playground';
  const KEY = 'aichat.apiKey';
  const log = $('log'), input = $('input'), statusLine = $('status');
  let state = load();
  /* Model id -> its price ({input, output, cached_input}, dollars per
   * million tokens), from /v1/models. */
  const pricing = {};
  let busy = null;            /* { ctl: AbortController, msg } while streaming */
  let keyAsk = null;          /* the key prompt on screen, shared by callers */

  /* ==== storage ==== */

  function load() {
    const fresh = { mode: 'chat', model: '', collection: '', system: '',
      temperature: 0.7, messages: [] };
    try {
      const s = JSON.parse(localStorage.getItem(STORE) || 'null');
      if (s && Array.isArray(s.messages)) {
        /* A page closed while an answer streamed left it part way. */
        const last = s.messages[s.messages.length - 1];
        if (last && last.role === 'assistant' && !last.meta && !last.error)
          last.stopped = true;
        return Object.assign(fresh, s);
      }
    } catch (e) { /* a broken entry: start afresh */ }
    return fresh;
  }

  function save() {
    try { localStorage.setItem(STORE, JSON.stringify(state)); } catch (e) { /* full */ }
  }

  /* ==== the API, with the key when the server wants one ==== */

  function askKey(refused) {
    if (keyAsk)
      return keyAsk;
    keyAsk = new Promise((resolve) => {
      const box = $('keybox'), field = $('key');
      $('key-why').textContent = refused ?
        'The server refused that key. Enter another one.' :
        'This server asks for an API key. It is kept for this tab only.';
      field.value = '';
      box.hidden = false;
      field.focus();
      const done = (v) => {
        box.hidden = true;
        $('key-ok').onclick = $('key-cancel').onclick = field.onkeydown = null;
        keyAsk = null;
        resolve(v);
        input.focus();
      };
      $('key-ok').onclick = () => done(field.value.trim() || null);
      $('key-cancel').onclick = () => done(null);
      field.onkeydown = (ev) => {
        if (ev.key === 'Enter') { ev.preventDefault(); done(field.value.trim() || null); }
        else if (ev.key === 'Escape') { ev.preventDefault(); ev.stopPropagation(); done(null); }
      };
    });
    return keyAsk;
  }

  /* fetch(path) with the tab's key; a 401 asks for a key and tries again. */
  async function api(path, opts) {
    opts = opts || {};
    for (let tries = 0; ; tries++) {
      const h = Object.assign({}, opts.headers || {});
      const key = sessionStorage.getItem(KEY);
      if (key)
        h.Authorization = 'Bearer ' + key;
      const res = await fetch(path, Object.assign({}, opts, { headers: h }));
      if (res.status !== 401 || tries >= 3)
        return res;
      const k = await askKey(!!key);
      if (!k)
        return res;
      sessionStorage.setItem(KEY, k);
    }
  }

  async function errorText(res) {
    let text = '';
    try { text = await res.text(); } catch (e) { /* gone */ }
    try {
      const j = JSON.parse(text);
      if (j.error && j.error.message)
        return res.status + ': ' + j.error.message;
      if (Array.isArray(j.detail) && j.detail.length)
        return res.status + ': ' + j.detail.map((d) => d.msg).join('; ');
    } catch (e) { /* not JSON */ }
    return res.status + ' ' + res.statusText + (text ? ': ' + text.slice(0, 300) : '');
  }

  /* The events of a text/event-stream body: { event, data }. */
  async function* events(res) {
    const reader = res.body.getReader(), dec = new TextDecoder();
    let buf = '', name = 'message', data = [];
    for (;;) {
      const { value, done } = await reader.read();
      if (done)
        break;
      buf += dec.decode(value, { stream: true });
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        let line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line.endsWith('\r'))
          line = line.slice(0, -1);
        if (line === '') {
          if (data.length)
            yield { event: name, data: data.join('\n') };
          name = 'message';
          data = [];
          continue;
        }
        if (line[0] === ':')
          continue;
        const c = line.indexOf(':');
        const field = c < 0 ? line : line.slice(0, c);
        let v = c < 0 ? '' : line.slice(c + 1);
        if (v[0] === ' ')
          v = v.slice(1);
        if (field === 'data')
          data.push(v);
        else if (field === 'event')
          name = v;
      }
    }
  }

  /* ==== markdown, as DOM nodes ==== */

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls)
      e.className = cls;
    if (text !== undefined)
      e.textContent = text;
    return e;
  }

  const INLINE = /(`+)([^`]+?)\1|\*\*([^*]+)\*\*|\*([^*\s][^*]*?)\*|\[([^\]\n]+)\]\((https?:\/\/[^\s)]+)\)/g;

  function inline(text, parent) {
    let last = 0, m;
    INLINE.lastIndex = 0;
    while ((m = INLINE.exec(text))) {
      if (m.index > last)
        parent.append(document.createTextNode(text.slice(last, m.index)));
      if (m[2] !== undefined)
        parent.append(el('code', null, m[2]));
      else if (m[3] !== undefined)
        parent.append(el('strong', null, m[3]));
      else if (m[4] !== undefined)
        parent.append(el('em', null, m[4]));
      else {
        const a = el('a', null, m[5]);
        a.href = m[6];
        a.rel = 'noopener noreferrer';
        a.target = '_blank';
        parent.append(a);
      }
      last = INLINE.lastIndex;
    }
    if (last < text.length)
      parent.append(document.createTextNode(text.slice(last)));
  }

  function copyText(text, btn) {
    const ok = () => { btn.textContent = 'Copied'; setTimeout(() => { btn.textContent = 'Copy'; }, 1500); };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(ok, () => { btn.textContent = 'Copy failed'; });
      return;
    }
    const t = el('textarea');
    t.value = text;
    document.body.append(t);
    t.select();
    try { document.execCommand('copy'); ok(); } catch (e) { btn.textContent = 'Copy failed'; }
    t.remove();
  }

  function codeBlock(code, lang) {
    const box = el('div', 'codeblock'), pre = el('pre'), c = el('code', null, code);
    const btn = el('button', 'copy', 'Copy');
    btn.type = 'button';
    btn.title = 'Copy the code';
    btn.addEventListener('click', () => copyText(code, btn));
    if (lang)
      c.dataset.lang = lang;
    pre.append(c);
    box.append(btn, pre);
    return box;
  }

  const FENCE = /^\s*(```|~~~)\s*([\w+#.-]*)/, HEADING = /^(#{1,4})\s+(.*)/;
  const QUOTE = /^\s*>\s?/, ITEM = /^\s*([-*+]|\d{1,9}[.)])\s+(.*)/;

  function blockStart(line) {
    return FENCE.test(line) || HEADING.test(line) || QUOTE.test(line) || ITEM.test(line);
  }

  function markdown(text, parent) {
    const lines = text.split('\n');
    let i = 0, m;
    while (i < lines.length) {
      const line = lines[i];
      if ((m = line.match(FENCE))) {
        const code = [], end = m[1];
        for (i++; i < lines.length && !lines[i].trim().startsWith(end); i++)
          code.push(lines[i]);
        i++;
        parent.append(codeBlock(code.join('\n'), m[2]));
      } else if ((m = line.match(HEADING))) {
        const h = el('h' + (m[1].length + 1));
        inline(m[2], h);
        parent.append(h);
        i++;
      } else if (QUOTE.test(line)) {
        const inner = [];
        for (; i < lines.length && QUOTE.test(lines[i]); i++)
          inner.push(lines[i].replace(QUOTE, ''));
        const q = el('blockquote');
        markdown(inner.join('\n'), q);
        parent.append(q);
      } else if ((m = line.match(ITEM))) {
        const ordered = /\d/.test(m[1]);
        const list = el(ordered ? 'ol' : 'ul');
        if (ordered && parseInt(m[1], 10) !== 1)
          list.start = parseInt(m[1], 10);
        for (; i < lines.length && (m = lines[i].match(ITEM)) && /\d/.test(m[1]) === ordered; i++) {
          const li = el('li');
          inline(m[2], li);
          list.append(li);
        }
        parent.append(list);
      } else if (!line.trim()) {
        i++;
      } else {
        const para = [lines[i++]];
        while (i < lines.length && lines[i].trim() && !blockStart(lines[i]))
          para.push(lines[i++]);
        const p = el('p');
        inline(para.join('\n'), p);
        parent.append(p);
      }
    }
  }

  /* ==== the conversation on screen ==== */

  function metaText(msg) {
    const parts = [];
    if (msg.model)
      parts.push(msg.model);
    if (msg.meta) {
      parts.push('first token ' + msg.meta.ttft + ' ms');
      parts.push(msg.meta.tokens + (msg.meta.tokens === 1 ? ' token' : ' tokens'));
      if (msg.meta.tps !== null)
        parts.push(msg.meta.tps.toFixed(1) + ' tokens/s');
      if (Number.isFinite(msg.meta.cost))
        parts.push('$' + msg.meta.cost.toFixed(6));
    }
    if (msg.stopped)
      parts.push('stopped');
    return parts.join(' · ');
  }

  function messageNode(msg, idx) {
    const n = el('div', 'msg ' + msg.role);
    const last = idx === state.messages.length - 1;
    n.dataset.index = String(idx);
    n.append(el('div', 'who', msg.role === 'user' ?
      (msg.mode === 'rag' ? 'You, asking ' + (msg.collection || 'documents') : 'You') :
      'Assistant'));
    const body = el('div', 'body');
    if (msg.role === 'user')
      body.append(el('p', null, msg.content));
    else
      markdown(msg.content, body);
    n.append(body);
    if (msg.role === 'assistant') {
      if (msg.sources && msg.sources.length) {
        const ol = el('ol', 'sources');
        ol.setAttribute('aria-label', 'Sources');
        for (const s of msg.sources) {
          const li = el('li');
          li.value = s.n;
          li.append(el('span', 'path', s.path + (Array.isArray(s.lines) ?
            ':' + s.lines[0] + '-' + s.lines[1] : '')));
          if (s.snippet)
            li.append(document.createTextNode(' ' + s.snippet));
          ol.append(li);
        }
        n.append(ol);
      }
      if (msg.error)
        n.append(el('div', 'error', msg.error));
      const meta = metaText(msg);
      if (meta)
        n.append(el('div', 'meta', meta));
      if (last && !busy) {
        const acts = el('div', 'actions');
        const retry = el('button', 'retry', 'Retry'), edit = el('button', 'edit', 'Edit');
        retry.type = edit.type = 'button';
        retry.title = 'Ask again';
        edit.title = 'Edit the last message';
        retry.addEventListener('click', retryLast);
        edit.addEventListener('click', editLast);
        acts.append(retry, edit);
        n.append(acts);
      }
    }
    return n;
  }

  function nearBottom() {
    return log.scrollHeight - log.scrollTop - log.clientHeight < 80;
  }

  function render() {
    const stick = nearBottom();
    log.replaceChildren(...state.messages.map(messageNode));
    if (stick)
      log.scrollTop = log.scrollHeight;
  }

  /* Redraws the message being streamed, only. */
  function update(msg) {
    const idx = state.messages.indexOf(msg);
    const old = log.querySelector('.msg[data-index="' + idx + '"]');
    const stick = nearBottom();
    if (old)
      old.replaceWith(messageNode(msg, idx));
    else
      log.append(messageNode(msg, idx));
    if (stick)
      log.scrollTop = log.scrollHeight;
  }

  function setBusy(on) {
    $('send').hidden = on;
    $('stop').hidden = !on;
    statusLine.textContent = on ? 'Answering… (Esc stops)' : '';
  }

  /* ==== asking ==== */

  /* The messages the model gets: the system prompt, then every exchange
   * so far that has text, up to the user message before msg. */
  function history(msg) {
    const out = [];
    if (state.system.trim())
      out.push({ role: 'system', content: state.system });
    for (const m of state.messages) {
      if (m === msg)
        break;
      if (m.content)
        out.push({ role: m.role, content: m.content });
    }
    return out;
  }

  function lastUser(msg) {
    const i = state.messages.indexOf(msg);
    for (let j = i - 1; j >= 0; j--)
      if (state.messages[j].role === 'user')
        return state.messages[j];
    return null;
  }

  /* What an answer cost, in US dollars, from the usage the server
   * reported and the model's price in /v1/models; null when either is
   * unknown. */
  function costOf(model, usage) {
    const p = pricing[model];
    if (!p || !usage || !Number.isFinite(usage.prompt_tokens) ||
        !Number.isFinite(usage.completion_tokens))
      return null;
    const d = usage.prompt_tokens_details;
    const cached = Math.min(usage.prompt_tokens,
      d && Number.isFinite(d.cached_tokens) ? d.cached_tokens : 0);
    const cin = Number.isFinite(p.cached_input) ? p.cached_input : p.input;
    return ((usage.prompt_tokens - cached) * p.input + cached * cin +
      usage.completion_tokens * p.output) / 1e6;
  }

  async function run(msg) {
    const ctl = new AbortController();
    const asked = msg.model;
    const t0 = performance.now();
    let tFirst = 0, deltas = 0, usage = null;
    busy = { ctl, msg };
    setBusy(true);
    update(msg);
    try {
      let res;
      const post = (path, body) => api(path, { method: 'POST', signal: ctl.signal,
        headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
      if (msg.mode === 'rag') {
        const q = lastUser(msg);
        const body = { query: q ? q.content : '', collection: msg.collection, stream: true };
        if (msg.model)
          body.model = msg.model;
        res = await post('/rag/query', body);
      } else {
        const body = { messages: history(msg), stream: true,
          stream_options: { include_usage: true }, temperature: Number(state.temperature) };
        if (msg.model)
          body.model = msg.model;
        res = await post('/v1/chat/completions', body);
      }
      if (!res.ok) {
        msg.error = await errorText(res);
        return;
      }
      for await (const ev of events(res)) {
        if (ev.data === '[DONE]')
          break;
        let j;
        try { j = JSON.parse(ev.data); } catch (e) { continue; }
        if (ev.event === 'error' || j.error) {
          msg.error = (j.error && j.error.message) || 'the stream ended with an error';
          break;
        }
        if (ev.event === 'metadata') {
          msg.sources = (j.sources || []).map((s) => ({ n: s.n, path: String(s.path),
            lines: s.lines, snippet: s.snippet ? String(s.snippet) : '' }));
          update(msg);
          continue;
        }
        if (ev.event === 'usage') {
          usage = j;
          continue;
        }
        let piece = '';
        if (msg.mode === 'rag') {
          piece = typeof j.content === 'string' ? j.content : '';
        } else {
          if (j.usage)
            usage = j.usage;
          if (j.model && !msg.model)
            msg.model = String(j.model);
          const c = j.choices && j.choices[0];
          if (c && c.delta && typeof c.delta.content === 'string')
            piece = c.delta.content;
        }
        if (piece) {
          if (!tFirst)
            tFirst = performance.now();
          deltas++;
          msg.content += piece;
          update(msg);
          save();
        }
      }
    } catch (e) {
      if (e && e.name === 'AbortError')
        msg.stopped = true;
      else
        msg.error = String((e && e.message) || e);
    } finally {
      const t1 = performance.now();
      if (tFirst) {
        const tokens = usage && Number.isFinite(usage.completion_tokens) ?
          usage.completion_tokens : deltas;
        const secs = (t1 - tFirst) / 1000;
        msg.meta = { ttft: Math.round(tFirst - t0), tokens,
          tps: tokens > 1 && secs > 0 ? (tokens - 1) / secs : null,
          cost: costOf(asked || msg.model, usage) };
      }
      busy = null;
      setBusy(false);
      save();
      render();
    }
  }

  function send() {
    const text = input.value;
    if (busy || !text.trim())
      return;
    if (state.mode === 'rag' && !state.collection) {
      statusLine.textContent = 'Pick a collection first (index one with: aichat rag index PATH).';
      return;
    }
    const user = { role: 'user', content: text, mode: state.mode };
    const msg = { role: 'assistant', content: '', mode: state.mode, model: state.model };
    if (state.mode === 'rag')
      user.collection = msg.collection = state.collection;
    state.messages.push(user, msg);
    input.value = '';
    save();
    render();
    run(msg);
  }

  function stop() {
    if (busy)
      busy.ctl.abort();
  }

  function retryLast() {
    const last = state.messages[state.messages.length - 1];
    if (busy || !last || last.role !== 'assistant')
      return;
    const msg = { role: 'assistant', content: '', mode: last.mode, model: state.model,
      collection: last.collection };
    if (msg.mode === 'rag')
      msg.collection = state.collection || last.collection;
    state.messages[state.messages.length - 1] = msg;
    render();
    run(msg);
  }

  function editLast() {
    if (busy)
      return;
    let i = state.messages.length - 1;
    while (i >= 0 && state.messages[i].role !== 'user')
      i--;
    if (i < 0)
      return;
    input.value = state.messages[i].content;
    state.messages.splice(i);
    save();
    render();
    input.focus();
  }

  function newChat() {
    stop();
    state.messages = [];
    save();
    render();
    input.focus();
  }

  /* ==== pickers and settings ==== */

  function fill(select, items, current) {
    select.replaceChildren(...items.map(([value, label]) => {
      const o = el('option', null, label);
      o.value = value;
      return o;
    }));
    if (items.some(([v]) => v === current))
      select.value = current;
  }

  async function loadModels() {
    const sel = $('model');
    try {
      const res = await api('/v1/models');
      if (!res.ok)
        throw new Error(await errorText(res));
      const j = await res.json();
      for (const m of j.data || [])
        if (m.pricing && Number.isFinite(m.pricing.input) && Number.isFinite(m.pricing.output))
          pricing[String(m.id)] = m.pricing;
      const ids = (j.data || []).map((m) => String(m.id)).sort();
      if (state.model && !ids.includes(state.model))
        ids.unshift(state.model);
      const items = ids.map((id) => [id, id]);
      items.unshift(['', 'server default']);
      fill(sel, items, state.model);
    } catch (e) {
      fill(sel, [['', 'server default']], '');
      statusLine.textContent = 'Could not list the models: ' + e.message;
    }
  }

  async function loadCollections() {
    const sel = $('collection');
    try {
      const res = await api('/rag/collections');
      if (!res.ok)
        throw new Error(await errorText(res));
      const j = await res.json();
      const items = (j.collections || []).map((c) => [String(c.name),
        c.name + ' (' + c.documents + ' docs)']);
      if (!items.length)
        items.push(['', 'no collections yet']);
      fill(sel, items, state.collection);
      state.collection = sel.value;
    } catch (e) {
      fill(sel, [['', 'unavailable']], '');
      state.collection = '';
      statusLine.textContent = 'Could not list the collections: ' + e.message;
    }
  }

  function showMode() {
    $('mode').value = state.mode;
    $('collection-pick').hidden = state.mode !== 'rag';
    input.placeholder = state.mode === 'rag' ?
      'Ask the documents: Enter sends, Shift+Enter is a new line, Esc stops' :
      'Message: Enter sends, Shift+Enter is a new line, Esc stops';
  }

  function init() {
    $('system').value = state.system;
    $('temperature').value = String(state.temperature);
    $('temperature-value').textContent = Number(state.temperature).toFixed(1);
    showMode();
    render();
    log.scrollTop = log.scrollHeight;

    $('mode').addEventListener('change', (ev) => {
      state.mode = ev.target.value;
      showMode();
      save();
      if (state.mode === 'rag')
        loadCollections().then(save);
    });
    $('model').addEventListener('change', (ev) => { state.model = ev.target.value; save(); });
    $('collection').addEventListener('change', (ev) => { state.collection = ev.target.value; save(); });
    $('system').addEventListener('input', (ev) => { state.system = ev.target.value; save(); });
    $('temperature').addEventListener('input', (ev) => {
      state.temperature = Number(ev.target.value);
      $('temperature-value').textContent = state.temperature.toFixed(1);
      save();
    });
    $('send').addEventListener('click', send);
    $('stop').addEventListener('click', stop);
    $('new').addEventListener('click', newChat);
    input.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
        ev.preventDefault();
        send();
      }
    });
    document.addEventListener('keydown', (ev) => {
      if (ev.key === 'Escape' && busy) {
        ev.preventDefault();
        stop();
      }
    });
    loadModels();
    if (state.mode === 'rag')
      loadCollections().then(save);
    input.focus();
  }

  init();
})();
