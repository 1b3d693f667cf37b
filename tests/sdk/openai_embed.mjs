// tests/sdk/openai_embed.mjs - the official OpenAI JavaScript SDK asking
// `aichat serve` for embeddings as a real client would.  Usage:
//   node openai_embed.mjs BASE_URL MODEL [FORMAT]
// FORMAT: float, base64, or none (the SDK's default: it asks for base64
// and decodes it).  Prints per embedding "INDEX LENGTH NORM FIRST" (NORM
// to 6 places, FIRST the first number to 6 places), then "usage P T";
// errors print "error STATUS TYPE".
import OpenAI from "openai";

const [baseURL, model, format] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey: process.env.SDK_KEY || "unused", maxRetries: 0 });

try {
	const params = { model, input: ["the cat sat", "stock prices fell"] };
	if (format && format !== "none") params.encoding_format = format;
	const r = await client.embeddings.create(params);
	for (const e of r.data) {
		const v = Array.from(e.embedding);
		const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
		console.log(`${e.index} ${v.length} ${norm.toFixed(6)} ${v[0].toFixed(6)}`);
	}
	console.log(`usage ${r.usage.prompt_tokens} ${r.usage.total_tokens}`);
} catch (e) {
	console.log(`error ${e.status} ${e.error?.type ?? e.message}`);
	process.exitCode = 3;
}
