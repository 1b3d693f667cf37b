// tests/sdk/anthropic_client.mjs - the official Anthropic TypeScript SDK
// talking to `aichat serve`'s /v1/messages as a real client would.  Usage:
//   node anthropic_client.mjs BASE_URL MODEL MODE
// MODE: plain | stream | tools | tools-stream | image | error.
// Prints the answer text, then "usage IN OUT" and "stop REASON"; tools
// prints "call NAME INPUT" for the model's tool_use, then the answer to the
// tool's result (tools-stream assembles the message from the stream, as
// the SDK's MessageStream does); errors print "error STATUS TYPE".
import Anthropic from "@anthropic-ai/sdk";

const [baseURL, model, mode] = process.argv.slice(2);
const client = new Anthropic({ baseURL, apiKey: process.env.SDK_KEY || "unused", maxRetries: 0 });
const text = (m) => m.content.filter((b) => b.type === "text").map((b) => b.text).join("");

try {
	if (mode === "plain" || mode === "stream") {
		const params = { model, max_tokens: 200, system: "be brief",
			messages: [{ role: "user", content: `${mode} through the anthropic sdk` }] };
		const m = mode === "plain" ? await client.messages.create(params) :
			await client.messages.stream(params).finalMessage();
		console.log(text(m));
		console.log(`usage ${m.usage.input_tokens} ${m.usage.output_tokens}`);
		console.log(`stop ${m.stop_reason}`);
	} else if (mode === "tools" || mode === "tools-stream") {
		const tools = [{ name: "lookup", description: "looks a word up",
			input_schema: { type: "object", properties: { query: { type: "string" } } } }];
		const messages = [{ role: "user", content: 'look up "café"' }];
		const ask = (p) => mode === "tools" ? client.messages.create(p) :
			client.messages.stream(p).finalMessage();
		const first = await ask({ model, max_tokens: 200, tools, messages });
		const use = first.content.find((b) => b.type === "tool_use");
		console.log(`call ${use.name} ${JSON.stringify(use.input)}`);
		console.log(`stop ${first.stop_reason}`);
		messages.push({ role: "assistant", content: first.content });
		messages.push({ role: "user", content: [{ type: "tool_result", tool_use_id: use.id, content: "42" }] });
		const second = await ask({ model, max_tokens: 200, tools, messages });
		console.log(text(second));
	} else if (mode === "image") {
		const m = await client.messages.create({ model, max_tokens: 100, messages: [{ role: "user", content: [
			{ type: "text", text: "what is this" },
			{ type: "image", source: { type: "base64", media_type: "image/png", data: "iVBORw0KGgo=" } }] }] });
		console.log(text(m));
	} else {
		await client.messages.create({ model, max_tokens: 0, messages: [{ role: "user", content: "x" }] });
		console.log("no error?");
	}
} catch (e) {
	console.log(`error ${e.status} ${e.error?.error?.type ?? e.error?.type ?? e.message}`);
	process.exitCode = 3;
}
