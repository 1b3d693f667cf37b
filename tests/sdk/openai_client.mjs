// tests/sdk/openai_client.mjs - the official OpenAI JavaScript SDK talking
// to `aichat serve` as a real client would.  Usage:
//   node openai_client.mjs BASE_URL MODEL stream|plain|error
// Prints the answer text (stream: the concatenated deltas), then a line
// "usage P C" when the server reported usage; errors print "error STATUS TYPE".
import OpenAI from "openai";

const [baseURL, model, mode] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey: process.env.SDK_KEY || "unused", maxRetries: 0 });

try {
	if (mode === "stream") {
		const stream = await client.chat.completions.create({
			model, stream: true, stream_options: { include_usage: true },
			messages: [{ role: "user", content: "streamed through the sdk" }],
		});
		let text = "", usage = null;
		for await (const chunk of stream) {
			if (chunk.choices.length && chunk.choices[0].delta.content)
				text += chunk.choices[0].delta.content;
			if (chunk.usage) usage = chunk.usage;
		}
		console.log(text);
		if (usage) console.log(`usage ${usage.prompt_tokens} ${usage.completion_tokens}`);
	} else if (mode === "plain") {
		const r = await client.chat.completions.create({
			model, messages: [
				{ role: "system", content: "be brief" },
				{ role: "user", content: "plain through the sdk" }],
		});
		console.log(r.choices[0].message.content);
		console.log(`usage ${r.usage.prompt_tokens} ${r.usage.completion_tokens}`);
	} else {
		await client.chat.completions.create({
			model, temperature: 9, messages: [{ role: "user", content: "x" }],
		});
		console.log("no error?");
	}
} catch (e) {
	console.log(`error ${e.status} ${e.error?.type ?? e.type ?? e.message}`);
	process.exitCode = 3;
}
