// tests/browser/playground.mjs - drives the playground (GET / of aichat
// serve) in Debian's chromium with puppeteer-core, as a person would.
//
//   node playground.mjs SCENARIO BASE_URL OUT_DIR [ARGS...]
//
// Each scenario prints "ok: ..." lines for what it saw and exits 0, or
// prints "FAIL: ..." and exits 1.  Every scenario fails on a dialog
// (alert/confirm/prompt), an uncaught page error or a console error.
// CHROMIUM names the browser (default /usr/bin/chromium).
import puppeteer from 'puppeteer-core';

const [scenario, base, outDir, ...args] = process.argv.slice(2);
const chromium = process.env.CHROMIUM || '/usr/bin/chromium';
const problems = [];

function fail(msg) {
  console.log('FAIL: ' + msg);
  process.exitCode = 1;
  throw new Error(msg);
}

function check(cond, msg) {
  if (!cond)
    fail(msg);
  console.log('ok: ' + msg);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function open(browser, opts = {}) {
  const page = await browser.newPage();
  await page.setViewport({ width: opts.width || 1000, height: 800 });
  page.on('dialog', async (d) => {
    problems.push('dialog ' + d.type() + ': ' + d.message());
    await d.dismiss();
  });
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
  page.on('console', (m) => {
    // A 401 the page answers by asking for a key is expected there.
    if (m.type() === 'error' && !(opts.allow401 && /status of 401/.test(m.text())))
      problems.push('console error: ' + m.text());
  });
  page.on('requestfailed', (r) => {
    // A stream the test stops on purpose is aborted: that is no problem.
    if (!/chat\/completions|rag\/query/.test(r.url()))
      problems.push('request failed: ' + r.url());
  });
  const res = await page.goto(base + '/', { waitUntil: 'load' });
  if (res.status() !== 200)
    fail('GET / answered ' + res.status());
  return page;
}

// The text of the last assistant message's body ('' when there is none).
const lastAnswer = (page) => page.$eval('#log', (log) => {
  const m = log.querySelectorAll('.msg.assistant .body');
  return m.length ? m[m.length - 1].textContent : '';
});

const lastMeta = (page) => page.$eval('#log', (log) => {
  const m = log.querySelectorAll('.msg.assistant');
  const meta = m.length ? m[m.length - 1].querySelector('.meta') : null;
  return meta ? meta.textContent : '';
});

async function pickModel(page, model) {
  await page.waitForSelector(`#model option[value="${model}"]`, { timeout: 10000 });
  await page.select('#model', model);
}

async function type(page, text) {
  await page.click('#input');
  await page.$eval('#input', (t, v) => { t.value = v; }, text);
  await page.keyboard.press('Enter');
}

// Waits until the page is idle again (the Send button back).
async function waitIdle(page, ms = 20000) {
  await page.waitForFunction(() => !document.getElementById('send').hidden &&
    document.getElementById('stop').hidden, { timeout: ms });
}

async function metric(name, labels) {
  const text = await (await fetch(base + '/metrics', {
    headers: process.env.KEY ? { Authorization: 'Bearer ' + process.env.KEY } : {},
  })).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name + '{'))
      continue;
    if (labels.every((l) => line.includes(l)))
      sum += Number(line.split(' ').pop());
  }
  return sum;
}

// ==== scenarios ====

// An answer that grows token by token, with its timings; a screenshot.
// Stop (Esc) in the middle of a long one, seen by the server as a
// cancelled stream; a reload keeps both.
async function stream(browser) {
  const page = await open(browser);
  await pickModel(page, 'mock:echo');
  const words = 'one two three four five six seven eight nine ten';
  // Every text the answer shows, as the page changes it.
  await page.evaluate(() => {
    window.seenStates = [];
    new MutationObserver(() => {
      const m = document.querySelectorAll('#log .msg.assistant .body');
      if (m.length)
        window.seenStates.push(m[m.length - 1].textContent);
    }).observe(document.getElementById('log'), { childList: true, subtree: true, characterData: true });
  });
  await type(page, words);
  await waitIdle(page);
  const seen = [...new Set(await page.evaluate(() => window.seenStates))]
    .filter((s) => s.length > 0 && s !== words);
  check(await lastAnswer(page) === words, 'the answer is the echoed message: ' + words);
  check(seen.length >= 3, `the answer grew: ${seen.length} partial states before the end`);
  check(seen.every((s) => words.startsWith(s)), 'every partial state is a prefix of the answer');
  const meta = await lastMeta(page);
  check(/first token \d+ ms/.test(meta), 'time to first token shown: ' + meta);
  check(/10 tokens/.test(meta), 'tokens shown');
  const tps = Number((meta.match(/([\d.]+) tokens\/s/) || [])[1]);
  // mock:echo sends a word every AICHAT_MOCK_DELAY_MS: no faster than that.
  const most = 1000 / Number(process.env.AICHAT_MOCK_DELAY_MS || 100) * 1.1;
  check(tps > 0 && tps <= most, `tokens/s shown, no more than the mock sends: ${tps} <= ${most.toFixed(1)}`);
  // The cost, from the usage the stream reported and the price /v1/models
  // gives ($1000 and $2000 per million, set by playground.bats): the 10
  // completion tokens cost $0.02, each prompt token $0.001 more.
  const cost = Number((meta.match(/\$(\d+\.\d{6})/) || [])[1]);
  const prompt = Math.round((cost - 0.02) / 0.001);
  check(prompt >= 1 && Math.abs(prompt * 0.001 + 0.02 - cost) < 1e-9,
    `the cost of the answer shown, from its tokens and price: ${meta}`);
  await page.screenshot({ path: outDir + '/playground.png' });
  console.log('ok: screenshot ' + outDir + '/playground.png');

  const cancelled = () => metric('aichat_streams_cancelled_total',
    ['route="/v1/chat/completions"']);
  const before = await cancelled();
  const long = Array.from({ length: 60 }, (_, i) => 'w' + i).join(' ');
  await type(page, long);
  await page.waitForFunction(() => {
    const m = document.querySelectorAll('.msg.assistant .body');
    return m.length === 2 && m[1].textContent.split(' ').length >= 3;
  }, { timeout: 20000 });
  await page.keyboard.press('Escape');
  await waitIdle(page, 5000);
  const partial = await lastAnswer(page);
  check(partial.length > 0 && partial.length < long.length && long.startsWith(partial),
    `Esc stopped the answer part way: ${partial.split(' ').length} of 60 words`);
  check(/stopped/.test(await lastMeta(page)), 'the answer says it was stopped');
  // Had the upstream call gone on, the words would keep coming: they do not.
  await sleep(500);
  let after = before;
  for (let i = 0; i < 50 && after === before; i++) {
    after = await cancelled();
    await sleep(100);
  }
  check(after === before + 1, `/metrics counts the stopped stream (aichat_streams_cancelled_total ${before} -> ${after})`);

  await page.reload({ waitUntil: 'load' });
  await page.waitForSelector('.msg.assistant');
  const texts = await page.$$eval('.msg .body', (b) => b.map((x) => x.textContent));
  check(texts.length === 4, 'after a reload the conversation has its 4 messages');
  check(texts[0] === words && texts[1] === words, 'the first exchange is back');
  check(texts[3] === partial, 'the stopped answer is back as it was');
  check(/first token/.test(await page.$eval('.msg.assistant .meta', (m) => m.textContent)),
    'the timings are back');

  // Retry asks again; Edit takes the question back into the box.
  await page.click('.msg.assistant:last-child .retry');
  await waitIdle(page);
  check(await lastAnswer(page) === long, 'Retry answers the last message again, in full');
  await page.click('.msg.assistant:last-child .edit');
  check(await page.$eval('#input', (t) => t.value) === long, 'Edit puts the last message back in the box');
  check((await page.$$('.msg')).length === 2, 'Edit takes the last exchange out');
  await page.click('#new');
  check((await page.$$('.msg')).length === 0, 'New chat empties the conversation');
  await page.reload({ waitUntil: 'load' });
  check((await page.$$('.msg')).length === 0, 'and it stays empty after a reload');

  // A reload in the middle of an answer keeps what had come, marked stopped.
  await type(page, long);
  await page.waitForFunction(() => {
    const m = document.querySelectorAll('.msg.assistant .body');
    return m.length === 1 && m[0].textContent.split(' ').length >= 3;
  }, { timeout: 20000 });
  await page.reload({ waitUntil: 'load' });
  await page.waitForSelector('.msg.assistant');
  const kept = await lastAnswer(page);
  check(kept.split(' ').length >= 3 && kept.length < long.length && long.startsWith(kept),
    `a reload mid-answer keeps its ${kept.split(' ').length} words`);
  check(/stopped/.test(await lastMeta(page)), 'and says it was stopped');
}

// RAG mode: the collection picker, then numbered sources under the answer.
async function rag(browser) {
  const [collection, question, wantPath] = args;
  const page = await open(browser);
  await pickModel(page, 'mock:echo');
  await page.select('#mode', 'rag');
  await page.waitForSelector(`#collection option[value="${collection}"]`, { timeout: 10000 });
  const label = await page.$eval(`#collection option[value="${collection}"]`, (o) => o.textContent);
  check(/\(\d+ docs\)/.test(label), 'the collection picker shows the collection: ' + label);
  await page.select('#collection', collection);
  await type(page, question);
  await waitIdle(page);
  const sources = await page.$$eval('.msg.assistant .sources li', (li) =>
    li.map((x) => ({ n: x.value, text: x.textContent })));
  check(sources.length >= 1, `${sources.length} numbered sources under the answer`);
  check(sources[0].n === 1 && sources[0].text.includes(wantPath),
    `source 1 is ${sources[0].text}`);
  const answer = await lastAnswer(page);
  check(answer.includes(question), 'the answer streamed (mock:echo repeats the prompt)');
  check(/first token \d+ ms/.test(await lastMeta(page)), 'the RAG answer has its timings');
}

// Model output with markup is shown as text and runs nothing.
async function xss(browser) {
  const page = await open(browser);
  await pickModel(page, 'mock:echo');
  const evil = '<img src=x onerror=alert(1)> <script>alert(2)</script> ' +
    '[link](javascript:alert(3)) `<b>code</b>` **bold**';
  await type(page, evil);
  await waitIdle(page);
  await sleep(300);
  const body = await page.$eval('.msg.assistant .body', (b) => b.textContent);
  check(body.includes('<img src=x onerror=alert(1)>'), 'the img tag shows as text');
  check(body.includes('<script>alert(2)</script>'), 'the script tag shows as text');
  check(await page.$$eval('#log img, #log script, #log a[href^="javascript"]', (n) => n.length) === 0,
    'no img, script or javascript: link in the conversation');
  check(await page.$eval('.msg.assistant .body strong', (s) => s.textContent) === 'bold',
    'markdown still renders (bold)');
  check(await page.$eval('.msg.assistant .body code', (s) => s.textContent) === '<b>code</b>',
    'inline code shows its markup as text');
  // A code block, with a copy button.
  await type(page, 'look:\n```\n<i>x</i>\n```');
  await waitIdle(page);
  const code = await page.$eval('.msg.assistant:last-child .codeblock code', (c) => c.textContent);
  check(code === '<i>x</i>', 'a fenced block is a code block with its text');
  check(await page.$('.msg.assistant:last-child .codeblock button.copy') !== null, 'the code block has a copy button');
  // Shift+Enter is a new line, not a send.
  await page.click('#input');
  await page.keyboard.type('a');
  await page.keyboard.down('Shift');
  await page.keyboard.press('Enter');
  await page.keyboard.up('Shift');
  await page.keyboard.type('b');
  check(await page.$eval('#input', (t) => t.value) === 'a\nb', 'Shift+Enter makes a new line');
  check((await page.$$('.msg')).length === 4, 'and sends nothing');
}

// A server with keys: the page asks once, keeps the key for the tab only.
async function key(browser) {
  const [good] = args;
  const page = await open(browser, { allow401: true });
  await page.waitForSelector('#keybox:not([hidden])', { timeout: 10000 });
  console.log('ok: the page asks for the key');
  await page.type('#key', 'wrong-key');
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => !document.getElementById('keybox').hidden &&
    /refused/.test(document.getElementById('key-why').textContent), { timeout: 10000 });
  console.log('ok: a refused key is asked again');
  await page.type('#key', good);
  await page.keyboard.press('Enter');
  await pickModel(page, 'mock:echo');
  console.log('ok: with the key the models are listed');
  await type(page, 'hello with a key');
  await waitIdle(page);
  check(await lastAnswer(page) === 'hello with a key', 'the answer comes with the key');
  check(await page.$eval('#keybox', (b) => b.hidden), 'no second prompt');
  const stored = await page.evaluate(() => ({ s: sessionStorage.getItem('aichat.apiKey'),
    l: JSON.stringify(Object.assign({}, localStorage)) }));
  check(stored.s === good, 'the key is in sessionStorage');
  check(!stored.l.includes(good), 'and not in localStorage');
}

// 360 px wide, in dark mode: nothing overflows, the colours follow.
async function layout(browser) {
  const page = await open(browser, { width: 360 });
  await pickModel(page, 'mock:echo');
  await type(page, 'a narrow screen ' + 'word '.repeat(40));
  await waitIdle(page);
  const wide = await page.evaluate(() => document.documentElement.scrollWidth);
  check(wide <= 360, `nothing is wider than 360 px (scrollWidth ${wide})`);
  const inView = await page.$$eval('#send, #input, #model, #new', (els) =>
    els.every((e) => { const r = e.getBoundingClientRect(); return r.width > 0 && r.right <= 360; }));
  check(inView, 'the input, Send, the model picker and New chat are on screen');
  const bg = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  await page.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: 'light' }]);
  const light = await bg();
  await page.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: 'dark' }]);
  const dark = await bg();
  const lum = (c) => c.match(/\d+/g).slice(0, 3).reduce((a, b) => a + Number(b), 0);
  check(lum(dark) < lum(light), `dark mode is darker (${light} -> ${dark})`);
}

const scenarios = { stream, rag, xss, key, layout };
if (!scenarios[scenario]) {
  console.log('FAIL: unknown scenario ' + scenario);
  process.exit(2);
}
let browser;
try {
  browser = await puppeteer.launch({
    executablePath: chromium,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
} catch (e) {
  console.log('FAIL: chromium (' + chromium + ') did not start: ' + e.message);
  process.exit(1);
}
try {
  await scenarios[scenario](browser);
  if (problems.length)
    fail('the page misbehaved: ' + problems.join(' | '));
  check(true, 'no dialog, page error or console error');
} catch (e) {
  if (!process.exitCode) {
    console.log('FAIL: ' + e.message);
    process.exitCode = 1;
  }
} finally {
  await browser.close();
}
